using Microsoft.ML.LoRA.Tokenization;

namespace Microsoft.ML.LoRA.Training;

/// <summary>
/// A tokenized example and its class index (0-based); a regression example carries its value in <see cref="Target"/>
/// (and class index 0).
/// </summary>
public sealed record LabeledExample(EncodedText Text, int Label)
{
    /// <summary>The value a regression model should predict for this example (unused by classifiers).</summary>
    public float Target { get; init; }
}
