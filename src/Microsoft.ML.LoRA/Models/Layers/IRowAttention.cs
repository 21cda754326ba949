using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// A self-attention module that can compute some rows only: what <see cref="BertAttention"/> wraps with its output
/// projection, so that families whose layers differ only in how attention scores are formed (BERT's
/// <see cref="SelfAttention"/>, DeBERTa's disentangled attention) share the rest of the layer.
/// </summary>
internal interface IRowAttention
{
    /// <summary><paramref name="rows"/> (some or all rows of <paramref name="x"/>) attending to every position of x: [batch, rows, hidden].</summary>
    Tensor Attend(Tensor rows, Tensor x, Tensor? keyMask);
}
