using Microsoft.ML.LoRA.MLNet;

namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>Ready-made pipeline factories for <see cref="SweepRunner.Run"/> (and the <c>lora sweep</c> command).</summary>
public static class SweepPipelines
{
    /// <summary>
    /// Multiclass: <c>MapValueToKey(label)</c> then the LoRA classifier, for a label column of raw values (text, numbers).
    /// The saved model's PredictedLabel is the key; map it back with <c>MapKeyToValue</c> after loading if needed.
    /// </summary>
    public static Func<LoraTextClassifierOptions, IEstimator<ITransformer>> Multiclass(MLContext mlContext)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        return options => mlContext.Transforms.Conversion.MapValueToKey(options.LabelColumnName)
            .Append(mlContext.MulticlassClassification.Trainers.LoraTextClassifier(options));
    }

    /// <summary>Binary: the LoRA classifier alone, for a Boolean label column (true = the positive class).</summary>
    public static Func<LoraTextClassifierOptions, IEstimator<ITransformer>> Binary(MLContext mlContext)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        return options => mlContext.BinaryClassification.Trainers.LoraTextClassifier(options);
    }
}
