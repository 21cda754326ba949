namespace Microsoft.ML.LoRA.MLNet;

/// <summary>What the fitted model outputs.</summary>
public enum ClassifierTask
{
    /// <summary>Key-typed label; outputs Score (one probability per class) and PredictedLabel (key).</summary>
    Multiclass,
    /// <summary>Boolean label; outputs Score (raw log-odds), Probability and PredictedLabel (Boolean).</summary>
    Binary,
    /// <summary>Single (float) label; outputs Score (the predicted value). One output, trained with mean squared error.</summary>
    Regression,
}
