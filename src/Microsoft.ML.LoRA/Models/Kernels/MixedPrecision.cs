using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// bfloat16 matrix products on the CPU, the part of torch.autocast("cpu", dtype=torch.bfloat16) that matters for
/// these models: every <see cref="LoraLinear"/> multiplies in bf16 and returns fp32, while LayerNorm, softmax,
/// attention, the loss, the LoRA factors, gradients and optimizer state stay fp32.
/// </summary>
/// <remarks>
/// On CPUs with AVX-512 BF16 (or AMX) libtorch's oneDNN multiplies bf16 several times faster than MKL multiplies
/// fp32; elsewhere bf16 products are emulated and slower, so <see cref="IsAccelerated"/> should gate it.
/// bf16 keeps 8 significant bits: logits move by a small share of their spread and the fixtures' predictions stay
/// the same (measured: docs/benchmarks.md, "Why the kernels are built as they are").
/// </remarks>
public static class MixedPrecision
{
    /// <summary>Runs every linear layer of <paramref name="model"/> in bfloat16 (or back in fp32 with false).</summary>
    public static void UseBFloat16MatMul(this nn.Module model, bool enabled = true)
    {
        foreach (var (_, module) in model.named_modules())
            if (module is LoraLinear linear) linear.ComputeDtype = enabled ? ScalarType.BFloat16 : null;
    }

    /// <summary>Whether <paramref name="precision"/> means bf16 products on this machine.</summary>
    public static bool UsesBFloat16(this ComputePrecision precision) => precision switch
    {
        ComputePrecision.BFloat16 => true,
        ComputePrecision.Auto => IsAccelerated,
        _ => false,
    };

    /// <summary>
    /// Sets every linear layer of <paramref name="model"/> to multiply as <paramref name="precision"/> says on this
    /// machine when training (<see cref="ComputePrecision.Int8"/> trains in fp32; see <see cref="Int8Scoring.UseForScoring"/>).
    /// </summary>
    public static void Use(this nn.Module model, ComputePrecision precision) => model.UseBFloat16MatMul(precision.UsesBFloat16());

    /// <summary>True when this CPU multiplies bf16 natively (x86 flags avx512_bf16 or amx_bf16 in /proc/cpuinfo).</summary>
    public static bool IsAccelerated => Accelerated.Value;

    static readonly Lazy<bool> Accelerated = new(() =>
    {
        const string cpuinfo = "/proc/cpuinfo";
        if (!File.Exists(cpuinfo)) return false;
        var flags = File.ReadLines(cpuinfo).FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal)) ?? "";
        var set = flags.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return set.Contains("avx512_bf16") || set.Contains("amx_bf16");
    });
}
