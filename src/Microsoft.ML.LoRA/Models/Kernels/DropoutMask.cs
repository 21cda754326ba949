using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models.Kernels;

/// <summary>
/// Boolean keep-masks for dropout (true = keep, with probability 1 - p), drawn by a counter-based generator on the
/// CPU: element i's bits are SplitMix64(seed + i·γ), and the seed is one draw from torch's default generator, so
/// <c>torch.manual_seed</c> makes masks repeat and restoring torch's RNG state (as activation checkpointing does)
/// replays them.
/// </summary>
/// <remarks>
/// libtorch's CPU uniform and bernoulli kernels run one Mersenne Twister draw at a time on a single thread, slow
/// enough that a small model's LoRA dropouts alone are a visible share of its training step. This fills the mask
/// straight into the tensor's memory on the calling thread, eight hashes an AVX-512 instruction, four an AVX2
/// instruction on CPUs without AVX-512 (their 64-bit products built from 32-bit ones), or one at a time on CPUs with
/// neither (measured: docs/benchmarks.md, "Why the kernels are built as they are"). Each 64-bit hash
/// gives two elements their own 32 bits, compared with round(p·2³²): the drop probability is p to within 2⁻³³.
/// Tensors that are not on the CPU fall back to torch.rand_like.
/// </remarks>
internal static class DropoutMask
{
    const ulong Gamma = 0x9E3779B97F4A7C15UL;
    const ulong MixFirst = 0xBF58476D1CE4E5B9UL, MixSecond = 0x94D049BB133111EBUL;

    /// <summary>A boolean tensor shaped like <paramref name="like"/>: each element true with probability 1 - p.</summary>
    public static Tensor Keep(Tensor like, double p)
    {
        if (p <= 0) return torch.ones(like.shape, ScalarType.Bool, like.device);
        if (p >= 1) return torch.zeros(like.shape, ScalarType.Bool, like.device);
        if (like.device_type != DeviceType.CPU || like.numel() > int.MaxValue)
        {
            using var draw = torch.rand_like(like, ScalarType.Float32);
            using Scalar probability = p;
            return draw.ge(probability);
        }
        var keep = torch.empty(like.shape, ScalarType.Bool);
        Fill(keep, NextSeed(), Threshold(p));
        return keep;
    }

    /// <summary>The 32-bit threshold below which an element is dropped.</summary>
    internal static uint Threshold(double p) => (uint)Math.Min(uint.MaxValue, Math.Round(p * 4294967296.0));

    /// <summary>A 62-bit seed from torch's default generator (two 31-bit draws).</summary>
    internal static ulong NextSeed()
    {
        // One buffer a thread, so drawing a seed allocates nothing native between the step's large tensors.
        var draws = _seedDraws ??= torch.empty(new long[] { 2 }, ScalarType.Int64).DetachFromDisposeScope();
        draws.random_(0, int.MaxValue);
        using var pair = draws.data<long>();
        return ((ulong)pair[0] << 31) ^ (ulong)pair[1];
    }

    [ThreadStatic] static Tensor? _seedDraws;

    /// <summary>The ways of filling a mask, fastest first; every one gives the same bits for the same seed.</summary>
    internal enum Kernel { Avx512, Avx2, OneByOne }

    /// <summary>The fastest kernel this CPU runs.</summary>
    internal static Kernel Best { get; } =
        Vector512.IsHardwareAccelerated ? Kernel.Avx512 : Avx2.IsSupported ? Kernel.Avx2 : Kernel.OneByOne;

    /// <summary>Whether this CPU can run <paramref name="kernel"/>.</summary>
    internal static bool Supports(Kernel kernel) => kernel >= Best;

    static void Fill(Tensor keep, ulong seed, uint threshold) => Fill(keep, seed, threshold, Best);

    /// <summary>Fills <paramref name="keep"/> (a CPU boolean tensor) with <paramref name="kernel"/>.</summary>
    internal static unsafe void Fill(Tensor keep, ulong seed, uint threshold, Kernel kernel)
    {
        if (!Supports(kernel)) throw new PlatformNotSupportedException($"This CPU cannot run the {kernel} dropout-mask kernel.");
        long n = keep.numel();
        fixed (byte* mask = keep.bytes)
        {
            long vectorEnd = kernel switch
            {
                Kernel.Avx512 => FillAvx512Blocks(mask, n, seed, threshold),
                Kernel.Avx2 => FillAvx2Blocks(mask, n, seed, threshold),
                _ => 0,
            };
            FillOneByOne(mask, vectorEnd, n, seed, threshold);
        }
    }

    /// <summary>Mask elements per AVX-512 block: 32 hashes of two elements each.</summary>
    const long Avx512BlockElements = 64;

    /// <summary>
    /// The whole blocks of the first <paramref name="n"/> elements with AVX-512: eight hashes a vector, four vectors
    /// narrowed to 64 mask bytes. Returns how many elements it filled.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe long FillAvx512Blocks(byte* mask, long n, ulong seed, uint threshold)
    {
        var vSeed = Vector512.Create(seed);
        var vThreshold = Vector512.Create(threshold);
        var one = Vector512.Create((byte)1);
        var eight = Vector512.Create(8UL);
        // Hash i (element pair 2i, 2i+1) mixes seed + (i + 1)·γ, as in FillOneByOne, the same function as Mix.
        var counter = Vector512.Create(1UL, 2, 3, 4, 5, 6, 7, 8);
        long blocks = n / Avx512BlockElements;
        for (long b = 0; b < blocks; b++)
        {
            var h0 = KeepLanes(counter, vSeed, vThreshold); counter += eight;
            var h1 = KeepLanes(counter, vSeed, vThreshold); counter += eight;
            var h2 = KeepLanes(counter, vSeed, vThreshold); counter += eight;
            var h3 = KeepLanes(counter, vSeed, vThreshold); counter += eight;
            var low = Vector512.Narrow(h0, h1);
            var high = Vector512.Narrow(h2, h3);
            (Vector512.Narrow(low, high) & one).Store(mask + b * Avx512BlockElements);
        }
        return blocks * Avx512BlockElements;
    }

    /// <summary>For eight counters: all-ones in each 32-bit half of the hash that is at or above the threshold.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<uint> KeepLanes(Vector512<ulong> counter, Vector512<ulong> seed, Vector512<uint> threshold)
    {
        var z = seed + counter * Vector512.Create(Gamma);
        z = (z ^ Vector512.ShiftRightLogical(z, 30)) * Vector512.Create(MixFirst);
        z = (z ^ Vector512.ShiftRightLogical(z, 27)) * Vector512.Create(MixSecond);
        z ^= Vector512.ShiftRightLogical(z, 31);
        return Vector512.GreaterThanOrEqual(z.AsUInt32(), threshold);
    }

    /// <summary>Mask elements per AVX2 block: 16 hashes of two elements each.</summary>
    const long Avx2BlockElements = 32;

    /// <summary>
    /// The whole blocks of the first <paramref name="n"/> elements with AVX2: four hashes a vector, four vectors
    /// narrowed to 32 mask bytes. Returns how many elements it filled.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe long FillAvx2Blocks(byte* mask, long n, ulong seed, uint threshold)
    {
        var vSeed = Vector256.Create(seed);
        var vThreshold = Vector256.Create(threshold);
        var one = Vector256.Create((byte)1);
        var four = Vector256.Create(4UL);
        var counter = Vector256.Create(1UL, 2, 3, 4);
        long blocks = n / Avx2BlockElements;
        for (long b = 0; b < blocks; b++)
        {
            var h0 = KeepLanes(counter, vSeed, vThreshold); counter += four;
            var h1 = KeepLanes(counter, vSeed, vThreshold); counter += four;
            var h2 = KeepLanes(counter, vSeed, vThreshold); counter += four;
            var h3 = KeepLanes(counter, vSeed, vThreshold); counter += four;
            var bytes = Vector256.Narrow(Vector256.Narrow(h0, h1), Vector256.Narrow(h2, h3));
            (bytes & one).Store(mask + b * Avx2BlockElements);
        }
        return blocks * Avx2BlockElements;
    }

    /// <summary>For four counters: all-ones in each 32-bit half of the hash that is at or above the threshold.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<uint> KeepLanes(Vector256<ulong> counter, Vector256<ulong> seed, Vector256<uint> threshold)
    {
        var z = seed + Times(counter, Gamma);
        z = Times(z ^ Vector256.ShiftRightLogical(z, 30), MixFirst);
        z = Times(z ^ Vector256.ShiftRightLogical(z, 27), MixSecond);
        z ^= Vector256.ShiftRightLogical(z, 31);
        // Kept unless below the threshold, compared unsigned: AVX2 compares signed, so both sides' sign bits flip.
        var bias = Vector256.Create(0x8000_0000u);
        return ~Vector256.GreaterThan((threshold ^ bias).AsInt32(), (z.AsUInt32() ^ bias).AsInt32()).AsUInt32();
    }

    /// <summary>The low 64 bits of a·c per lane from AVX2's 32×32→64-bit products: lo·lo + ((hi·lo + lo·hi) ≪ 32).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<ulong> Times(Vector256<ulong> a, ulong c)
    {
        var cLow = Vector256.Create(c & 0xFFFF_FFFFUL).AsUInt32();
        var cHigh = Vector256.Create(c >> 32).AsUInt32();
        var aHigh = Vector256.ShiftRightLogical(a, 32).AsUInt32();
        var cross = Avx2.Multiply(aHigh, cLow) + Avx2.Multiply(a.AsUInt32(), cHigh);
        return Avx2.Multiply(a.AsUInt32(), cLow) + Vector256.ShiftLeft(cross, 32);
    }

    /// <summary>Tensors from this many elements up are split between the intra-op threads by <see cref="ScaleKept"/>.</summary>
    const long ParallelFrom = 1 << 18;

    /// <summary>
    /// Writes <paramref name="source"/> × <paramref name="keptScale"/> into <paramref name="destination"/> where the
    /// mask of (<paramref name="seed"/>, <paramref name="threshold"/>) keeps an element and 0 where it drops it: the
    /// bits <see cref="Fill(Tensor, ulong, uint, Kernel)"/> would write, applied in one pass with no mask tensor. Both
    /// tensors are contiguous float32 on the CPU with the same number of elements; large ones are split between
    /// torch's intra-op thread count of .NET threads (libtorch's own threads sleep meanwhile). With an
    /// <paramref name="elementOffset"/> (even) the tensors take the mask's elements from there on: the part of a larger
    /// tensor's mask that falls on a slice of it starting at that element.
    /// </summary>
    internal static unsafe void ScaleKept(Tensor source, Tensor destination, ulong seed, uint threshold, float keptScale, Kernel kernel, long elementOffset = 0)
    {
        if (!Supports(kernel)) throw new PlatformNotSupportedException($"This CPU cannot run the {kernel} dropout-mask kernel.");
        if (source.dtype != ScalarType.Float32 || destination.dtype != ScalarType.Float32) throw new ArgumentException("ScaleKept works on float32 tensors");
        if (elementOffset < 0 || elementOffset % 2 != 0) throw new ArgumentOutOfRangeException(nameof(elementOffset), elementOffset, "the offset must be even and not negative");
        long n = source.numel();
        if (destination.numel() != n) throw new ArgumentException("source and destination differ in size");
        fixed (byte* from = source.bytes)
        fixed (byte* to = destination.bytes)
        {
            // The kernels index elements from the mask's first: the pointers move back by the offset.
            nint src = (nint)((float*)from - elementOffset), dst = (nint)((float*)to - elementOffset);
            int parts = n < ParallelFrom ? 1 : Math.Max(1, Math.Min(Environment.ProcessorCount, torch.get_num_threads()));
            // Part boundaries fall on whole 64-element blocks: every vector kernel's block and an even element.
            long perPart = (n / parts + 63) / 64 * 64;
            if (parts == 1) ScaleKeptRange((float*)src, (float*)dst, elementOffset, elementOffset + n, seed, threshold, keptScale, kernel);
            else Parallel.For(0, parts, part =>
            {
                long begin = Math.Min(n, part * perPart), end = part == parts - 1 ? n : Math.Min(n, begin + perPart);
                ScaleKeptRange((float*)src, (float*)dst, elementOffset + begin, elementOffset + end, seed, threshold, keptScale, kernel);
            });
        }
    }

    static unsafe void ScaleKeptRange(float* src, float* dst, long from, long to, ulong seed, uint threshold, float keptScale, Kernel kernel)
    {
        long vectorEnd = kernel switch
        {
            Kernel.Avx512 => ScaleAvx512Blocks(src, dst, from, to, seed, threshold, keptScale),
            Kernel.Avx2 => ScaleAvx2Blocks(src, dst, from, to, seed, threshold, keptScale),
            _ => from,
        };
        ScaleOneByOne(src, dst, vectorEnd, to, seed, threshold, keptScale);
    }

    /// <summary>Whole blocks of 16 elements from <paramref name="from"/> (even): one hash a pair, as FillAvx512Blocks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe long ScaleAvx512Blocks(float* src, float* dst, long from, long to, ulong seed, uint threshold, float keptScale)
    {
        var vSeed = Vector512.Create(seed);
        var vThreshold = Vector512.Create(threshold);
        var scale = Vector512.Create(keptScale);
        var eight = Vector512.Create(8UL);
        ulong first = (ulong)(from / 2) + 1;
        var counter = Vector512.Create(first, first + 1, first + 2, first + 3, first + 4, first + 5, first + 6, first + 7);
        long end = from + (to - from) / 16 * 16;
        for (long i = from; i < end; i += 16)
        {
            var kept = KeepLanes(counter, vSeed, vThreshold).AsSingle(); counter += eight;
            ((Vector512.Load(src + i) & kept) * scale).Store(dst + i);
        }
        return end;
    }

    /// <summary>Whole blocks of 8 elements from <paramref name="from"/> (even): one hash a pair, as FillAvx2Blocks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe long ScaleAvx2Blocks(float* src, float* dst, long from, long to, ulong seed, uint threshold, float keptScale)
    {
        var vSeed = Vector256.Create(seed);
        var vThreshold = Vector256.Create(threshold);
        var scale = Vector256.Create(keptScale);
        var four = Vector256.Create(4UL);
        ulong first = (ulong)(from / 2) + 1;
        var counter = Vector256.Create(first, first + 1, first + 2, first + 3);
        long end = from + (to - from) / 8 * 8;
        for (long i = from; i < end; i += 8)
        {
            var kept = KeepLanes(counter, vSeed, vThreshold).AsSingle(); counter += four;
            ((Vector256.Load(src + i) & kept) * scale).Store(dst + i);
        }
        return end;
    }

    /// <summary>Elements [from, to) one hash at a time (from is even), as FillOneByOne.</summary>
    static unsafe void ScaleOneByOne(float* src, float* dst, long from, long to, ulong seed, uint threshold, float keptScale)
    {
        for (long j = from; j < to; j += 2)
        {
            ulong z = Mix(seed + (ulong)(j / 2 + 1) * Gamma);
            dst[j] = (uint)z >= threshold ? src[j] * keptScale : 0f;
            if (j + 1 < to) dst[j + 1] = (uint)(z >> 32) >= threshold ? src[j + 1] * keptScale : 0f;
        }
    }

    /// <summary>
    /// Elements [from, to) one hash at a time (from is even): elements j and j+1 are the low and high halves of
    /// hash j/2.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe void FillOneByOne(byte* mask, long from, long to, ulong seed, uint threshold)
    {
        for (long j = from; j < to; j += 2)
        {
            ulong z = Mix(seed + (ulong)(j / 2 + 1) * Gamma);
            mask[j] = (uint)z >= threshold ? (byte)1 : (byte)0;
            if (j + 1 < to) mask[j + 1] = (uint)(z >> 32) >= threshold ? (byte)1 : (byte)0;
        }
    }

    /// <summary>SplitMix64's output function.</summary>
    static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * MixFirst;
        z = (z ^ (z >> 27)) * MixSecond;
        return z ^ (z >> 31);
    }
}
