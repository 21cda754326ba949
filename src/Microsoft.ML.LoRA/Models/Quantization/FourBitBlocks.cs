using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.LoRA.Models.Quantization;

/// <summary>
/// The loops of blockwise 4-bit quantization (bitsandbytes' quantize_4bit and dequantize_4bit). The weight is seen
/// as one row-major sequence of n values cut into blocks of blockSize (the last may be short); element e's code is
/// the high nibble of byte e/2 when e is even and the low nibble when it is odd, as bitsandbytes packs them.
/// Each loop covers a range of whole blocks, so parts of a weight run on separate threads.
/// </summary>
internal static unsafe class FourBitBlocks
{
    /// <summary>
    /// Quantizes blocks [<paramref name="firstBlock"/>, <paramref name="endBlock"/>) of <paramref name="x"/>: each
    /// block's absolute maximum into <paramref name="absmax"/>, and each value times the maximum's reciprocal
    /// (bitsandbytes multiplies, it does not divide; an all-zero block uses 0) rounded to its nearest level's code.
    /// An odd n leaves the last byte's low nibble 0.
    /// </summary>
    public static void Quantize(float* x, long n, int blockSize, FourBitRounding rounding, byte* codes, float* absmax,
        long firstBlock, long endBlock, QuantizationKernel kernel)
    {
        bool vector = kernel != QuantizationKernel.Scalar;
        int* chunk = stackalloc int[8];
        for (long block = firstBlock; block < endBlock; block++)
        {
            long start = block * blockSize, end = Math.Min(n, start + blockSize);
            float max = vector ? AbsMaxVector(x + start, end - start) : AbsMaxScalar(x + start, end - start);
            absmax[block] = max;
            float inverse = max > 0 ? 1f / max : 0f;
            long e = start;
            if (vector)
            {
                for (; e + 8 <= end; e += 8)
                {
                    Codes(Vector256.Load(x + e) * Vector256.Create(inverse), rounding).Store(chunk);
                    byte* to = codes + (e >> 1);
                    to[0] = (byte)(chunk[0] << 4 | chunk[1]);
                    to[1] = (byte)(chunk[2] << 4 | chunk[3]);
                    to[2] = (byte)(chunk[4] << 4 | chunk[5]);
                    to[3] = (byte)(chunk[6] << 4 | chunk[7]);
                }
            }
            for (; e < end; e++)
            {
                int code = rounding.Code(x[e] * inverse);
                if ((e & 1) == 0) codes[e >> 1] = (byte)(code << 4);
                else codes[e >> 1] |= (byte)code;
            }
        }
    }

    /// <summary>The codes of eight values already divided by their block's maximum, as <see cref="FourBitRounding.Code"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> Codes(Vector256<float> v, FourBitRounding rounding)
    {
        var code = Vector256<int>.Zero;
        if (rounding.SignMagnitude)
        {
            code = Vector256.LessThan(v, Vector256<float>.Zero).AsInt32() & Vector256.Create(8);
            v = Vector256.Abs(v);
        }
        var thresholds = rounding.Thresholds;
        var steps = rounding.Steps;
        for (int t = 0; t < thresholds.Length; t++)
            code += Vector256.GreaterThan(v, Vector256.Create(thresholds[t])).AsInt32() & Vector256.Create(steps[t]);
        return code;
    }

    static float AbsMaxScalar(float* x, long count)
    {
        float max = 0;
        for (long i = 0; i < count; i++) max = MathF.Max(max, MathF.Abs(x[i]));
        return max;
    }

    static float AbsMaxVector(float* x, long count)
    {
        var max = Vector256<float>.Zero;
        long i = 0;
        for (; i + 8 <= count; i += 8) max = Vector256.Max(max, Vector256.Abs(Vector256.Load(x + i)));
        float result = 0;
        for (int lane = 0; lane < 8; lane++) result = MathF.Max(result, max.GetElement(lane));
        for (; i < count; i++) result = MathF.Max(result, MathF.Abs(x[i]));
        return result;
    }

    /// <summary>
    /// Writes blocks [<paramref name="firstBlock"/>, <paramref name="endBlock"/>) of the weight into
    /// <paramref name="destination"/>: each value is its code's level times its block's scale. Block starts are
    /// multiples of 16 (the block size is), so the vector loops read whole bytes and the short last block ends in
    /// the scalar loop. <paramref name="streaming"/> writes past the caches (non-temporal stores, for a destination
    /// aligned to 64 bytes), which more than doubles the speed of filling a large buffer that is already mapped.
    /// </summary>
    public static void Dequantize(byte* codes, long n, int blockSize, float* levels, BlockScales scales, float* destination,
        long firstBlock, long endBlock, QuantizationKernel kernel, bool streaming)
    {
        // Element pairs share a byte: the even element's nibble is the high one, shifted down by 4.
        var duplicate = Vector128.Create((byte)0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
        var table512 = kernel == QuantizationKernel.Avx512 ? Vector512.Load(levels) : default;
        var shift512 = Vector512.Create(4u, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0);
        var low256 = Vector256.Load(levels);
        var high256 = Vector256.Load(levels + 8);
        var shift256 = Vector256.Create(4u, 0, 4, 0, 4, 0, 4, 0);
        for (long block = firstBlock; block < endBlock; block++)
        {
            float scale = scales[block];
            long e = block * blockSize, end = Math.Min(n, e + blockSize);
            if (kernel == QuantizationKernel.Avx512)
            {
                var s = Vector512.Create(scale);
                for (; e + 16 <= end; e += 16)
                {
                    // Eight bytes → 16 nibble indices in element order; vpermps reads only an index's low 4 bits.
                    var bytes = Ssse3.Shuffle(Vector128.CreateScalar(*(ulong*)(codes + (e >> 1))).AsByte(), duplicate);
                    var index = Avx512F.ShiftRightLogicalVariable(Avx512F.ConvertToVector512Int32(bytes).AsUInt32(), shift512);
                    var values = Avx512F.PermuteVar16x32(table512, index.AsInt32()) * s;
                    if (streaming) Avx512F.StoreAlignedNonTemporal(destination + e, values);
                    else values.Store(destination + e);
                }
            }
            else if (kernel == QuantizationKernel.Avx2)
            {
                var s = Vector256.Create(scale);
                for (; e + 8 <= end; e += 8)
                {
                    // Four bytes → 8 indices; vpermps reads the low 3 bits, and bit 3 (moved to the sign) picks the table.
                    var bytes = Ssse3.Shuffle(Vector128.CreateScalar(*(uint*)(codes + (e >> 1))).AsByte(), duplicate);
                    var index = Avx2.ShiftRightLogicalVariable(Avx2.ConvertToVector256Int32(bytes).AsUInt32(), shift256).AsInt32();
                    var level = Avx.BlendVariable(Avx2.PermuteVar8x32(low256, index), Avx2.PermuteVar8x32(high256, index),
                        Avx2.ShiftLeftLogical(index, 28).AsSingle());
                    var values = level * s;
                    if (streaming) Avx.StoreAlignedNonTemporal(destination + e, values);
                    else values.Store(destination + e);
                }
            }
            for (; e < end; e++)
            {
                int code = (e & 1) == 0 ? codes[e >> 1] >> 4 : codes[e >> 1] & 15;
                destination[e] = levels[code] * scale;
            }
        }
        if (streaming) Sse.StoreFence();
    }
}
