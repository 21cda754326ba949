namespace Microsoft.ML.LoRA.MLNet;

/// <summary>What the fitted classifier outputs.</summary>
public enum ClassifierTask
{
    /// <summary>Key-typed label; outputs Score (one probability per class) and PredictedLabel (key).</summary>
    Multiclass,
    /// <summary>Boolean label; outputs Score (raw log-odds), Probability and PredictedLabel (Boolean).</summary>
    Binary,
}
