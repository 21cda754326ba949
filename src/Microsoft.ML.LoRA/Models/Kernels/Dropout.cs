using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models.Kernels;

/// <summary>
/// Inverted dropout (zero each element with probability p, scale the rest by 1/(1-p)), the same distribution as
/// torch's F.dropout but cheaper on the CPU: the mask comes from <see cref="DropoutMask"/>. Float32 CPU tensors take
/// <see cref="FusedDropout"/> (mask drawn and applied in one pass, drawn again for the backward pass, nothing kept in
/// between); others the product with a boolean mask, which keeps only that mask (1 byte an element) for backward.
/// </summary>
/// <remarks>
/// libtorch's CPU dropout draws its mask with bernoulli_, element by element, into an fp32 noise tensor that autograd
/// keeps until the backward pass. A vectorised draw kept as a boolean mask already shortens a training step, and the
/// counter-based masks and the product with the mask are cheaper again
/// (measured: docs/benchmarks.md, "Why the kernels are built as they are"). Masks follow torch's default
/// generator, so seeded runs repeat.
/// </remarks>
internal static class Dropout
{
    /// <summary>Dropout of <paramref name="x"/> in training; outside training (or with p = 0) a fresh alias of x.</summary>
    public static Tensor Apply(Tensor x, double p, bool training)
    {
        if (!training || p <= 0) return x.alias();
        if (p >= 1) return torch.zeros_like(x);
        if (FusedDropout.Handles(x)) return FusedDropout.Apply(x, p, (float)(1.0 / (1.0 - p)));
        var kept = Unscaled(x, p);
        using Scalar scale = 1.0 / (1.0 - p);
        return kept.mul_(scale);
    }

    /// <summary>
    /// x with each element zeroed with probability p, the survivors left unscaled: for a caller that folds the
    /// 1/(1-p) into a smaller tensor further on (attention scales v, LoRA its output's factor). Requires 0 &lt; p &lt; 1.
    /// </summary>
    public static Tensor Unscaled(Tensor x, double p)
    {
        if (FusedDropout.Handles(x)) return FusedDropout.Apply(x, p, 1f);
        using var keep = DropoutMask.Keep(x, p);
        return x.mul(keep);
    }
}
