using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// How a <see cref="LoraLinear"/> computes its frozen base's product y = x·Wᵀ + b. The weight's number format is
/// a choice independent of the adapter (fp32, bf16 products under mixed precision, an int8 snapshot for scoring, a
/// 4-bit base as QLoRA keeps one), so each format is one implementation that owns how its weight is kept, and the
/// layer reaches the weight only through <see cref="DenseWeight"/> and <see cref="StoreWeight"/>: merging, folding
/// and quantizing then work on any format that can give a dense weight back and take one.
/// </summary>
internal interface IBaseProduct : IDisposable
{
    /// <summary>x·Wᵀ + b for x [..., in]: [..., out], in x's number type.</summary>
    Tensor Multiply(Tensor x);

    /// <summary>
    /// True when an input of <paramref name="inputType"/> is multiplied in that same type, so a caller may fold
    /// <see cref="DenseWeight"/> into a product of its own and get what <see cref="Multiply"/> would give; false when
    /// the product runs in another type (bf16, int8) whose rounding the fold would not reproduce.
    /// </summary>
    bool MultipliesIn(ScalarType inputType);

    /// <summary>
    /// The weight as a dense [out, in] tensor in its own floating type (dequantized for a packed format; a view of
    /// the stored weight where it is dense, so call it without autograd and do not write to it). The caller disposes
    /// it, inside a dispose scope.
    /// </summary>
    Tensor DenseWeight();

    /// <summary>
    /// Makes <paramref name="weight"/> (dense, [out, in]) the new weight, in this format's own representation
    /// (<see cref="LoraLinear.Merge"/> and <see cref="LoraLinear.Unmerge"/> write through it). Call it without autograd.
    /// </summary>
    void StoreWeight(Tensor weight);
}
