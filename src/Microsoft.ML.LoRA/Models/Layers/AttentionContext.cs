using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models.Kernels;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// The attention context from projected queries and the key and value projection layers: the part of a
/// self-attention block that families with separate key and value projections share (BERT, RoBERTa, DistilBERT;
/// a family with a fused projection, GPT-2's c_attn, calls the kernels itself).
/// </summary>
internal static class AttentionContext
{
    /// <summary>
    /// The context of queries <paramref name="q"/> (projected from <paramref name="rows"/>, some or all rows of
    /// <paramref name="x"/>) over keys and values projected from every position of x: [batch, rows, heads·headDim].
    /// For a few rows at inference the key and value projections are folded into the queries and probabilities
    /// (<see cref="Attention.ReadRows"/>) where both layers can give their eval weight; otherwise keys and values are
    /// projected and <see cref="Attention.Run"/> computes the rest. Score bias and grouped heads as Attention.Run takes them.
    /// </summary>
    public static Tensor Of(Tensor q, Tensor rows, Tensor x, LoraLinear key, LoraLinear value, int heads, Tensor? keyMask,
        double dropout, bool training, Tensor? scoreBias = null, int? keyValueHeads = null)
    {
        if (Attention.FoldsKeysAndValues(rows, x, heads, training))
        {
            using var keyWeight = key.EvalWeight(x);
            using var valueWeight = value.EvalWeight(x);
            if (keyWeight is not null && valueWeight is not null)
                return Attention.ReadRows(q, x, keyWeight, valueWeight, value.bias, heads, keyMask, scoreBias, keyValueHeads);
        }
        using var k = key.forward(x);
        using var v = value.forward(x);
        return Attention.Run(q, k, v, heads, keyMask, dropout, training, scoreBias: scoreBias, keyValueHeads: keyValueHeads);
    }
}
