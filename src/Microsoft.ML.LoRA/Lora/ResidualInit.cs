using Microsoft.ML.LoRA.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Lora;

/// <summary>
/// The initialisations that take A and B from the frozen weight and leave the rest in it, as PEFT computes them:
/// PiSSA (the r largest singular values and vectors: B = U_r·√(S_r/s), A = √(S_r/s)·V_rᵀ) and OLoRA (QR: B = Q_r,
/// A = R_r), where the layer's weight becomes W − s·B·A, so its output is unchanged until the factors train; and LoftQ
/// (<see cref="Loftq"/>), where the weight becomes its quantized approximation Q and Q + s·B·A approximates W. All are
/// deterministic, so loading an adapter recomputes the same base weight from the base checkpoint.
/// </summary>
internal static class ResidualInit
{
    /// <summary>
    /// Initialises the adapter <paramref name="layer"/> carries by <paramref name="init"/> and stores the residual weight.
    /// Returns LoftQ's approximation errors for <see cref="LoraInit.Loftq"/>, else null.
    /// </summary>
    public static LoftqError? Apply(LoraLinear layer, LoraInit init, int loftqBits = 4, int loftqIterations = 1)
    {
        var adapter = layer.Adapter ?? throw new InvalidOperationException("the layer has no adapter to initialise");
        int r = adapter.Rank;
        long full = Math.Min(layer.InFeatures, layer.OutFeatures);
        if (r > full)
            throw new ArgumentException($"{init} takes r = {r} components from a [{layer.OutFeatures} x {layer.InFeatures}] weight, which has only {full}; lower the rank.");
        if (init == LoraInit.Olora && layer.FanInFanOut)
            throw new NotSupportedException("OLoRA on fused Conv1D layers (GPT-2's fan_in_fan_out) decomposes the transposed weight in PEFT; use PiSSA or another initialisation for GPT-2.");
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var weight = layer.BaseWeight().to_type(ScalarType.Float32);
        if (init == LoraInit.Loftq)
        {
            using var loftq = Loftq.Initialize(weight, loftqBits, r, loftqIterations, adapter.Scaling);
            adapter.A.copy_(loftq.A);
            adapter.B.copy_(loftq.B);
            layer.ReplaceBaseWeight(loftq.Base);
            return new LoftqError(loftq.PlainError, loftq.LoftqError);
        }
        Tensor a, b;
        if (init == LoraInit.Pissa)
        {
            var (u, s, vh) = torch.linalg.svd(weight, fullMatrices: false);
            using Scalar scaling = adapter.Scaling;
            var root = s.narrow(0, 0, r).div(scaling).sqrt();
            a = vh.narrow(0, 0, r).mul(root.unsqueeze(1));
            b = u.narrow(1, 0, r).mul(root.unsqueeze(0));
        }
        else if (init == LoraInit.Olora)
        {
            var (q, rr) = torch.linalg.qr(weight);
            a = rr.narrow(0, 0, r).contiguous();
            b = q.narrow(1, 0, r).contiguous();
        }
        else throw new ArgumentOutOfRangeException(nameof(init), $"{init} takes nothing from the weight");
        adapter.A.copy_(a);
        adapter.B.copy_(b);
        using Scalar factor = adapter.Scaling;
        layer.ReplaceBaseWeight(weight.sub(b.matmul(a).mul(factor)));
        return null;
    }

    /// <summary>Whether <paramref name="init"/> takes A and B from the weight.</summary>
    public static bool Takes(LoraInit init) => init is LoraInit.Pissa or LoraInit.Olora or LoraInit.Loftq;
}
