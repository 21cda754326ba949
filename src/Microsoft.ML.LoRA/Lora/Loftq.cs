using Microsoft.ML.LoRA.Models.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Lora;

/// <summary>
/// LoftQ initialisation (Li et al., 2023) as PEFT's loftq_init computes it: the quantized base and the adapter are
/// chosen together so that base + s·B·A is close to the full-precision weight W, instead of leaving the whole
/// quantization error in the base with B = 0. Starting from the residual R = W, each iteration quantizes R
/// (NF4 in blocks of 64 without double quantization for 4 bits, rows of int8 for 8), takes the rank-r truncated SVD
/// U_r·S_r·V_rᵀ of W − dequant(quant(R)), and sets R = W − s·B·A for the next one. The SVD's singular values are
/// split evenly between the factors as PEFT splits them, and divided by the LoRA scaling s first so that
/// base + s·B·A ≈ W for any s: B = U_r·√(S_r/s), A = √(S_r/s)·V_rᵀ (PEFT assumes s = 1; with s = 1 the two agree).
/// </summary>
internal static class Loftq
{
    /// <summary>
    /// The base, A and B for <paramref name="weight"/> [out, in] (computed in fp32 without gradient; the result holds
    /// fp32 CPU tensors: Base [out, in], A [r, in], B [out, r]) after <paramref name="iterations"/> rounds.
    /// </summary>
    /// <exception cref="ArgumentException">
    /// The weight is not 2-D; <paramref name="bits"/> is not 4 or 8; <paramref name="rank"/> is not in
    /// [1, min(out, in)]; <paramref name="iterations"/> is below 1; or <paramref name="scaling"/> is not positive.
    /// </exception>
    public static LoftqResult Initialize(Tensor weight, int bits, int rank, int iterations, double scaling)
    {
        if (weight.dim() != 2) throw new ArgumentException($"LoftQ initialises a 2-D weight; this one has shape [{string.Join(", ", weight.shape)}]", nameof(weight));
        var kind = bits switch
        {
            4 => BaseQuantization.Nf4,
            8 => BaseQuantization.Int8,
            _ => throw new ArgumentException($"LoftQ quantizes to 4 bits (NF4) or 8 bits (int8), not {bits}", nameof(bits)),
        };
        long full = Math.Min(weight.shape[0], weight.shape[1]);
        if (rank < 1 || rank > full)
            throw new ArgumentException($"the rank must be between 1 and {full} for a [{weight.shape[0]} x {weight.shape[1]}] weight, not {rank}", nameof(rank));
        if (iterations < 1) throw new ArgumentException($"LoftQ needs at least one iteration, not {iterations}", nameof(iterations));
        if (!(scaling > 0) || double.IsInfinity(scaling)) throw new ArgumentException($"the LoRA scaling must be positive and finite, not {scaling}", nameof(scaling));

        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        using Scalar s = scaling;
        var w = weight.detach().to(DeviceType.CPU).to_type(ScalarType.Float32).contiguous();
        var norm = w.norm().item<float>();
        Tensor residual = w, dequantized = null!, a = null!, b = null!;
        double plainError = 0;
        for (int i = 0; i < iterations; i++)
        {
            // Each round's temporaries (the SVD's factors are as large as the weight) go with the round.
            using var round = torch.NewDisposeScope();
            Tensor nextDequantized;
            using (var quantized = QuantizedWeight.Quantize(residual, kind, doubleQuantization: false, blockSize: 64))
                nextDequantized = quantized.Dequantize();
            if (i == 0) plainError = RelativeDistance(w, nextDequantized, norm);
            var (u, singular, vh) = torch.linalg.svd(w.sub(nextDequantized), fullMatrices: false);
            var root = singular.narrow(0, 0, rank).div(s).sqrt();
            var nextA = vh.narrow(0, 0, rank).mul(root.unsqueeze(1));
            var nextB = u.narrow(1, 0, rank).mul(root.unsqueeze(0));
            var nextResidual = i + 1 == iterations ? null : w.sub(nextB.matmul(nextA).mul(s));
            round.MoveToOuter(nextDequantized, nextA, nextB);
            if (i > 0) foreach (var previous in new[] { dequantized, a, b }) previous.Dispose();
            if (!ReferenceEquals(residual, w)) residual.Dispose();
            (dequantized, a, b) = (nextDequantized, nextA, nextB);
            if (nextResidual is null) break;
            round.MoveToOuter(nextResidual);
            residual = nextResidual;
        }
        double loftqError = RelativeDistance(w, dequantized.add(b.matmul(a).mul(s)), norm);
        var result = new LoftqResult(dequantized.contiguous(), a.contiguous(), b.contiguous(), plainError, loftqError);
        scope.Detach(result.Base, result.A, result.B);
        return result;
    }

    /// <summary>‖w − approximation‖_F / ‖w‖_F (0 for an all-zero w that is matched exactly).</summary>
    static double RelativeDistance(Tensor w, Tensor approximation, float norm)
    {
        double distance = w.sub(approximation).norm().item<float>();
        return norm > 0 ? distance / norm : distance;
    }
}

/// <summary>
/// What <see cref="Loftq.Initialize"/> gives: the dequantized base to quantize the layer's weight from, the adapter
/// factors A [r, in] and B [out, r], and the relative Frobenius errors ‖W − Q(W)‖/‖W‖ of a quantized base with
/// B = 0 (plain initialisation) and ‖W − (base + s·B·A)‖/‖W‖ of LoftQ's. The tensors are fp32 on the CPU, owned by
/// this result: dispose it, or detach what is kept.
/// </summary>
internal sealed record LoftqResult(Tensor Base, Tensor A, Tensor B, double PlainError, double LoftqError) : IDisposable
{
    /// <summary>Disposes the three tensors.</summary>
    public void Dispose()
    {
        Base.Dispose();
        A.Dispose();
        B.Dispose();
    }
}
