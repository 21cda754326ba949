using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Training;

/// <summary>Clips gradients to a global L2 norm, as <c>torch.nn.utils.clip_grad_norm_</c> does (Scalars kept alive; see Scalars).</summary>
public static class GradientClipping
{
    /// <summary>Scales every gradient by max / (norm + 1e-6) when their joint norm exceeds <paramref name="maxNorm"/>; returns the norm before clipping.</summary>
    public static double ClipByGlobalNorm(IReadOnlyList<Parameter> parameters, double maxNorm)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var grads = parameters.Select(p => p.grad).OfType<Tensor>().ToList();
        if (grads.Count == 0) return 0;
        double total = torch.stack(grads.Select(g => g.norm())).norm().item<float>();
        if (total > maxNorm)
        {
            using Scalar coefficient = maxNorm / (total + 1e-6);
            foreach (var g in grads) g.mul_(coefficient);
        }
        return total;
    }
}
