using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// A linear layer's [out, in] matrix rounded to integers and packed for FBGEMM, the CPU kernels behind PyTorch's
/// dynamic quantization (torch.ao.quantization.quantize_dynamic on nn.Linear): <see cref="Multiply"/> rounds each
/// input to uint8 with its own range, multiplies in integers, and returns fp32 with the bias added. As a
/// <see cref="IBaseProduct"/> it is a snapshot for scoring: a layer uses it only in eval mode without autograd.
/// </summary>
/// <remarks>
/// One scale and zero point cover the whole weight (per-tensor, quantize_dynamic's default); each input gets its own.
/// The weight keeps 7 bits ([-64, 63]) rather than 8: without AVX-512 VNNI, FBGEMM adds pairs of uint8 x int8
/// products in 16-bit registers that saturate, and 255·127·2 would overflow them (PyTorch avoids the same overflow
/// by giving activations 7 bits, its reduce_range). TorchSharp has no bindings for libtorch's FBGEMM operators, so
/// they are reached through a few lines of TorchScript compiled once per process; libtorch marks them deprecated
/// (it prints so once on first use), and <see cref="IsAvailable"/> is false where they are missing (a libtorch built
/// without FBGEMM, or a later one that dropped them).
/// </remarks>
internal sealed class Int8Weight : IBaseProduct
{
    const string Script = """
        def quantize(weight: Tensor):
            lo = min(float(weight.min()), 0.0)
            hi = max(float(weight.max()), 0.0)
            scale = max((hi - lo) / 127.0, 1e-30)
            zero_point = max(-64, min(63, int(round(-64.0 - lo / scale))))
            q = torch.clamp(torch.round(weight / scale) + zero_point, -64.0, 63.0).char()
            # FBGEMM's column offsets, as fbgemm_linear_quantize_weight computes them: each output's sum of q minus zero_point * in
            column_offsets = (q.int().sum(1) - zero_point * weight.size(1)).int()
            return q, torch.fbgemm_pack_quantized_matrix(q), column_offsets, scale, zero_point

        def multiply(x: Tensor, q: Tensor, packed: Tensor, column_offsets: Tensor, scale: float, zero_point: int, bias: Tensor):
            return torch.fbgemm_linear_int8_weight_fp32_activation(x, q, packed, column_offsets, scale, zero_point, bias)
        """;

    /// <summary>The compiled functions, or why they could not be compiled and run.</summary>
    static readonly Lazy<(jit.CompilationUnit? Unit, string? Failure)> Functions = new(() =>
    {
        try
        {
            var unit = torch.jit.compile(Script + "\n");   // the parser wants the last line ended
            using var scope = torch.NewDisposeScope();
            using var probe = Pack(unit, torch.ones(2, 4), torch.zeros(2));
            using var y = probe.Multiply(torch.ones(1, 4));
            return y.shape.SequenceEqual(new long[] { 1, 2 }) ? (unit, null) : (null, $"a [1, 4] x [4, 2] probe returned shape [{string.Join(", ", y.shape)}]");
        }
        catch (Exception e) { return (null, e.Message); }
    });

    readonly jit.CompilationUnit _functions;
    readonly Tensor _q, _packed, _columnOffsets, _bias;
    readonly double _scale;
    readonly long _zeroPoint;

    Int8Weight(jit.CompilationUnit functions, Tensor q, Tensor packed, Tensor columnOffsets, double scale, long zeroPoint, Tensor bias)
    {
        _functions = functions;
        (_q, _packed, _columnOffsets, _scale, _zeroPoint, _bias) = (q, packed, columnOffsets, scale, zeroPoint, bias);
    }

    /// <summary>True when this libtorch has the FBGEMM operators (an x86-64 CPU build).</summary>
    public static bool IsAvailable => Functions.Value.Unit is not null;

    /// <summary>Rounds <paramref name="weight"/> [out, in] (fp32) to int8 and packs it, with <paramref name="bias"/> [out] or zeros.</summary>
    public static Int8Weight Pack(Tensor weight, Tensor? bias) =>
        Pack(Functions.Value.Unit ?? throw new NotSupportedException(
            "int8 products need libtorch's FBGEMM operators (x86-64 CPU builds), which could not be used here: " + Functions.Value.Failure),
            weight, bias);

    static Int8Weight Pack(jit.CompilationUnit functions, Tensor weight, Tensor? bias)
    {
        using var scope = torch.NewDisposeScope();
        using var w = weight.detach().to_type(ScalarType.Float32).contiguous();
        var parts = (ValueTuple<object, object, object, object, object>)functions.invoke("quantize", w);
        var (q, packed, offsets) = ((Tensor)parts.Item1, (Tensor)parts.Item2, (Tensor)parts.Item3);
        using var scale = (Scalar)parts.Item4;
        using var zeroPoint = (Scalar)parts.Item5;
        var b = bias is null ? torch.zeros(weight.shape[0]) : bias.detach().to_type(ScalarType.Float32).contiguous().clone();
        var result = new Int8Weight(functions, q, packed, offsets, scale.ToDouble(), zeroPoint.ToInt64(), b);
        scope.Detach(q, packed, offsets, b);
        return result;
    }

    /// <summary>x·Wᵀ + b for x [..., in] (fp32), multiplied in int8; [..., out] fp32.</summary>
    public Tensor Multiply(Tensor x)
    {
        using var xc = x.contiguous();
        return (Tensor)_functions.invoke("multiply", xc, _q, _packed, _columnOffsets, _scale, _zeroPoint, _bias);
    }

    /// <summary>False: folding the fp32 weight into another product would not reproduce int8's rounding.</summary>
    public bool MultipliesIn(ScalarType inputType) => false;

    /// <summary>The weight as the int8 product sees it, (q - zero point) · scale, [out, in] fp32.</summary>
    public Tensor DenseWeight()
    {
        using Scalar zeroPoint = _zeroPoint;
        using Scalar scale = _scale;
        var weight = _q.to_type(ScalarType.Float32);
        weight.sub_(zeroPoint).mul_(scale);
        return weight;
    }

    /// <summary>
    /// Not supported: the packed matrix is a snapshot of what the layer multiplies by, taken once its weights are
    /// final, so a changed weight calls for a new snapshot (<see cref="LoraLinear.QuantizeToInt8"/>) instead.
    /// </summary>
    public void StoreWeight(Tensor weight) =>
        throw new NotSupportedException("an int8 snapshot is not written to: change the fp32 weight and quantize the layer again");

    public void Dispose()
    {
        _q.Dispose();
        _packed.Dispose();
        _columnOffsets.Dispose();
        _bias.Dispose();
    }
}
