using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// A batch of tokenized text: ids [batch, seq] (int64), attention mask [batch, seq] (1 = real token, 0 = padding)
/// and, for BERT, token type ids [batch, seq] (segment 0 / 1 of a text pair; null means all zeros).
/// </summary>
public sealed record ModelInput(Tensor InputIds, Tensor AttentionMask, Tensor? TokenTypeIds = null);
