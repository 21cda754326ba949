using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.LoRA.Models.Quantization;

/// <summary>
/// The instruction sets <see cref="QuantizedWeight"/>'s loops can run on, fastest first. Every kernel gives the same
/// bits: codes and scales are found by comparisons and one multiplication, and a weight is dequantized as one product
/// of its level and its scale, whatever the vector width.
/// </summary>
internal enum QuantizationKernel
{
    /// <summary>
    /// 16 weights an instruction: a 4-bit format's 16 levels fit one 512-bit register, so dequantizing is one
    /// permutation (vpermps) a vector. Quantizing runs the 256-bit loop.
    /// </summary>
    Avx512,

    /// <summary>8 weights an instruction: two 8-level permutations and a blend per vector.</summary>
    Avx2,

    /// <summary>One weight at a time, for CPUs with neither.</summary>
    Scalar,
}

/// <summary>Which <see cref="QuantizationKernel"/>s this CPU runs.</summary>
internal static class QuantizationKernels
{
    /// <summary>
    /// The fastest kernel this CPU runs: AVX-512 where .NET accelerates 512-bit vectors (not on CPUs that slow down
    /// under them), else AVX2, else scalar.
    /// </summary>
    public static QuantizationKernel Best { get; } =
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported && Ssse3.IsSupported ? QuantizationKernel.Avx512
        : Avx2.IsSupported && Vector256.IsHardwareAccelerated ? QuantizationKernel.Avx2
        : QuantizationKernel.Scalar;

    /// <summary>Whether this CPU can run <paramref name="kernel"/>.</summary>
    public static bool Supports(QuantizationKernel kernel) => kernel switch
    {
        QuantizationKernel.Avx512 => Avx512F.IsSupported && Ssse3.IsSupported,
        QuantizationKernel.Avx2 => Avx2.IsSupported && Vector256.IsHardwareAccelerated,
        _ => true,
    };

    /// <summary>Throws unless this CPU runs <paramref name="kernel"/>.</summary>
    public static void Require(QuantizationKernel kernel)
    {
        if (!Supports(kernel)) throw new PlatformNotSupportedException($"This CPU cannot run the {kernel} quantization kernel.");
    }

    /// <summary>
    /// How many parts to split <paramref name="work"/> elements into: torch's intra-op thread count (at most one a
    /// core), fewer where a part would hold less than <paramref name="perPart"/> elements.
    /// </summary>
    public static int Parts(long work, long perPart)
    {
        int threads = Math.Max(1, Math.Min(Environment.ProcessorCount, TorchSharp.torch.get_num_threads()));
        return (int)Math.Clamp(work / perPart, 1, threads);
    }
}
