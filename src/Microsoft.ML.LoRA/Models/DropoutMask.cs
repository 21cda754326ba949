using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// Boolean keep-masks for dropout (true = keep, with probability 1 - p), drawn by a counter-based generator on the
/// CPU: element i's bits are SplitMix64(seed + i·γ), and the seed is one draw from torch's default generator, so
/// <c>torch.manual_seed</c> makes masks repeat and restoring torch's RNG state (as activation checkpointing does)
/// replays them.
/// </summary>
/// <remarks>
/// libtorch's CPU uniform and bernoulli kernels run one Mersenne Twister draw at a time on a single thread: about
/// 3-5 ms per million elements here (the four LoRA dropouts alone cost a bert-tiny LoRA step 10-13 ms of ~122 ms).
/// This fills the mask straight into the tensor's memory on the calling thread, eight hashes an AVX-512 instruction
/// (about 0.16 ms per million; without AVX-512, one hash at a time, about 0.85 ms). Each 64-bit hash
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
    static uint Threshold(double p) => (uint)Math.Min(uint.MaxValue, Math.Round(p * 4294967296.0));

    /// <summary>A 62-bit seed from torch's default generator (two 31-bit draws).</summary>
    static ulong NextSeed()
    {
        // One buffer a thread, so drawing a seed allocates nothing native between the step's large tensors.
        var draws = _seedDraws ??= torch.empty(new long[] { 2 }, ScalarType.Int64).DetachFromDisposeScope();
        draws.random_(0, int.MaxValue);
        using var pair = draws.data<long>();
        return ((ulong)pair[0] << 31) ^ (ulong)pair[1];
    }

    [ThreadStatic] static Tensor? _seedDraws;

    static unsafe void Fill(Tensor keep, ulong seed, uint threshold)
    {
        long n = keep.numel();
        fixed (byte* mask = keep.bytes)
        {
            long vectorEnd = Vector512.IsHardwareAccelerated ? n / BlockElements * BlockElements : 0;
            FillBlocks(mask, 0, vectorEnd / BlockElements, seed, threshold);
            FillOneByOne(mask, vectorEnd, n, seed, threshold);
        }
    }

    /// <summary>Mask elements per vector block: 32 hashes of two elements each.</summary>
    const long BlockElements = 64;

    /// <summary>Blocks [from, to) with AVX-512: eight hashes a vector, four vectors narrowed to 64 mask bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe void FillBlocks(byte* mask, long from, long to, ulong seed, uint threshold)
    {
        var vSeed = Vector512.Create(seed);
        var vThreshold = Vector512.Create(threshold);
        var one = Vector512.Create((byte)1);
        var eight = Vector512.Create(8UL);
        // Hash i (element pair 2i, 2i+1) mixes seed + (i + 1)·γ, as in FillOneByOne, the same function as Mix.
        var counter = Vector512.Create(1UL, 2, 3, 4, 5, 6, 7, 8) + Vector512.Create((ulong)(from * BlockElements / 2));
        for (long b = from; b < to; b++)
        {
            var h0 = KeepLanes(counter, vSeed, vThreshold); counter += eight;
            var h1 = KeepLanes(counter, vSeed, vThreshold); counter += eight;
            var h2 = KeepLanes(counter, vSeed, vThreshold); counter += eight;
            var h3 = KeepLanes(counter, vSeed, vThreshold); counter += eight;
            var low = Vector512.Narrow(h0, h1);
            var high = Vector512.Narrow(h2, h3);
            (Vector512.Narrow(low, high) & one).Store(mask + b * BlockElements);
        }
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
