using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// Inverted dropout (zero each element with probability p, scale the rest by 1/(1-p)), the same distribution as
/// torch's F.dropout but cheaper on the CPU: the mask comes from a vectorised uniform draw compared with p and is kept
/// for the backward pass as a boolean tensor (1 byte an element).
/// </summary>
/// <remarks>
/// libtorch's CPU dropout draws its mask with bernoulli_, element by element, into an fp32 noise tensor that autograd
/// keeps until the backward pass. Here the draw is one vectorised torch.rand_like and the backward pass keeps a
/// boolean mask (masked_fill saves only its mask). With <see cref="Attention.Explicit"/>, measured on
/// all-MiniLM-L6-v2 LoRA training (batch 32 x 128 tokens, 2 threads): 1.92-2.03 s per step before, 1.68-1.71 s after.
/// Masks come from torch's default generator, so seeded runs repeat.
/// </remarks>
internal static class Dropout
{
    /// <summary>Dropout of <paramref name="x"/> in training; outside training (or with p = 0) a fresh alias of x.</summary>
    public static Tensor Apply(Tensor x, double p, bool training)
    {
        if (!training || p <= 0) return x.alias();
        if (p >= 1) return torch.zeros_like(x);
        using var draw = torch.rand_like(x);
        using Scalar probability = p;
        using var drop = draw.lt(probability);
        using Scalar scale = 1.0 / (1.0 - p);
        // masked_fill keeps only the boolean mask for its backward pass (a product would keep x as well).
        var kept = x.masked_fill(drop, Scalars.Zero);
        return kept.mul_(scale);
    }
}
