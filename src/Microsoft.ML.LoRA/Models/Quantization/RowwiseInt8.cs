using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.LoRA.Models.Quantization;

/// <summary>
/// The loops of LLM.int8's vectorwise storage (bitsandbytes' int8_vectorwise_quant and int8_vectorwise_dequant):
/// each row's absolute maximum is its scale, q = round(w·(127/absmax)) to the nearest integer (ties to even), and
/// the weight comes back as (q·absmax)·(1/127) in float, in that order. Each loop covers a range of rows.
/// </summary>
internal static unsafe class RowwiseInt8
{
    /// <summary>The factor bitsandbytes dequantizes with, 1/127 as a float (7.874015718698502e-3).</summary>
    public const float InverseOf127 = 1f / 127;

    /// <summary>
    /// Quantizes rows [<paramref name="firstRow"/>, <paramref name="endRow"/>) of <paramref name="x"/>
    /// [rows, <paramref name="columns"/>]: each row's absolute maximum into <paramref name="absmax"/>, its values into
    /// <paramref name="codes"/>. An all-zero row gets the scale 0 and codes 0.
    /// </summary>
    public static void Quantize(float* x, long columns, sbyte* codes, float* absmax, long firstRow, long endRow)
    {
        for (long row = firstRow; row < endRow; row++)
        {
            float* values = x + row * columns;
            sbyte* to = codes + row * columns;
            float max = 0;
            for (long c = 0; c < columns; c++) max = MathF.Max(max, MathF.Abs(values[c]));
            absmax[row] = max;
            float factor = max > 0 ? 127f / max : 0f;
            for (long c = 0; c < columns; c++) to[c] = (sbyte)MathF.Round(values[c] * factor);
        }
    }

    /// <summary>
    /// Writes rows [<paramref name="firstRow"/>, <paramref name="endRow"/>) of the weight into
    /// <paramref name="destination"/>; <paramref name="streaming"/> writes past the caches (non-temporal stores, for a
    /// destination aligned to 64 bytes with a multiple of 16 columns).
    /// </summary>
    public static void Dequantize(sbyte* codes, float* absmax, long columns, float* destination, long firstRow, long endRow,
        QuantizationKernel kernel, bool streaming)
    {
        for (long row = firstRow; row < endRow; row++)
        {
            sbyte* from = codes + row * columns;
            float* to = destination + row * columns;
            float scale = absmax[row];
            long c = 0;
            if (kernel == QuantizationKernel.Avx512)
            {
                var s = Vector512.Create(scale);
                var inverse = Vector512.Create(InverseOf127);
                for (; c + 16 <= columns; c += 16)
                {
                    var q = Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(from + c)));
                    var values = q * s * inverse;
                    if (streaming) Avx512F.StoreAlignedNonTemporal(to + c, values);
                    else values.Store(to + c);
                }
            }
            else if (kernel == QuantizationKernel.Avx2)
            {
                var s = Vector256.Create(scale);
                var inverse = Vector256.Create(InverseOf127);
                for (; c + 8 <= columns; c += 8)
                {
                    var q = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Vector128.CreateScalar(*(long*)(from + c)).AsSByte()));
                    var values = q * s * inverse;
                    if (streaming) Avx.StoreAlignedNonTemporal(to + c, values);
                    else values.Store(to + c);
                }
            }
            for (; c < columns; c++) to[c] = from[c] * scale * InverseOf127;
        }
        if (streaming) Sse.StoreFence();
    }
}
