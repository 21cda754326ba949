using Microsoft.ML.LoRA.Tokenization;

namespace Microsoft.ML.LoRA.Training;

/// <summary>A tokenized example and its class index (0-based).</summary>
public sealed record LabeledExample(EncodedText Text, int Label);
