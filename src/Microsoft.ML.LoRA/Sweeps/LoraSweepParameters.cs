using Microsoft.ML.LoRA.MLNet;

namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>
/// The swept hyper-parameters of one trial as a plain object: every property is optional, and null keeps the base
/// options' value. <see cref="ToOptions"/> turns it into the options of one training run. The shape suits
/// Microsoft.ML.AutoML's <c>CreateSweepableEstimator&lt;T&gt;</c> (a parameter class with a parameterless constructor
/// and plain properties, and a factory from it to an estimator); see docs/sweeps.md.
/// </summary>
public sealed class LoraSweepParameters
{
    /// <summary>LoRA rank r.</summary>
    public int? Rank { get; set; }
    /// <summary>LoRA alpha.</summary>
    public double? Alpha { get; set; }
    /// <summary>Dropout on the adapter's input.</summary>
    public double? Dropout { get; set; }
    /// <summary>Peak AdamW learning rate.</summary>
    public double? LearningRate { get; set; }
    /// <summary>Passes over the training data.</summary>
    public int? Epochs { get; set; }
    /// <summary>Adapt the attention query projection.</summary>
    public bool? LoraQuery { get; set; }
    /// <summary>Adapt the attention key projection.</summary>
    public bool? LoraKey { get; set; }
    /// <summary>Adapt the attention value projection.</summary>
    public bool? LoraValue { get; set; }
    /// <summary>Adapt the attention output projection.</summary>
    public bool? LoraProjection { get; set; }
    /// <summary>Adapt both feed-forward layers.</summary>
    public bool? LoraMlp { get; set; }
    /// <summary>Adapt the classification head with LoRA instead of training it in full.</summary>
    public bool? LoraHead { get; set; }

    /// <summary>True when at least one target switch is set (then the trial adapts exactly the switches that are on).</summary>
    public bool SetsTargets => LoraQuery is not null || LoraKey is not null || LoraValue is not null
        || LoraProjection is not null || LoraMlp is not null || LoraHead is not null;

    /// <summary>
    /// A copy of <paramref name="baseOptions"/> with the non-null parameters applied; the base object is not changed.
    /// When any switch is set, the trial adapts exactly the switches that are on: an unset switch takes the base's
    /// effective value (every transformer-layer linear when the base names no target), and the copy's <c>TargetModules</c> is emptied
    /// so that an all-off trial adapts nothing. Throws <see cref="ArgumentException"/> when switches are set but the base
    /// options select targets by module name or regex (the two cannot be combined).
    /// </summary>
    public LoraTextClassifierOptions ToOptions(LoraTextClassifierOptions baseOptions)
    {
        var options = ClassifierOptionsCopy.Of(baseOptions);
        if (Rank is int rank) options.Lora.Rank = rank;
        if (Alpha is double alpha) options.Lora.Alpha = alpha;
        if (Dropout is double dropout) options.Lora.Dropout = dropout;
        if (LearningRate is double learningRate) options.LearningRate = learningRate;
        if (Epochs is int epochs) options.Epochs = epochs;
        if (SetsTargets)
        {
            var inherited = LoraTargetSwitches.EffectiveOf(baseOptions.Lora) ?? throw new ArgumentException(
                "The base options select LoRA targets by module name or regex (Lora.TargetModules / Lora.TargetModulesRegex), " +
                "which a sweep over the target switches cannot combine with. Clear them in the base options, or do not sweep the switches.",
                nameof(baseOptions));
            new LoraTargetSwitches(LoraQuery ?? inherited.Query, LoraKey ?? inherited.Key, LoraValue ?? inherited.Value,
                LoraProjection ?? inherited.Projection, LoraMlp ?? inherited.Mlp, LoraHead ?? inherited.Head).ApplyTo(options.Lora);
        }
        return options;
    }
}
