namespace Microsoft.ML.LoRA.Tests.Models.Quantization;

/// <summary>
/// bitsandbytes' quantization formats written out with plain arrays, one value at a time, from the published code
/// books: what the library's vectorised implementation must reproduce element for element.
/// </summary>
internal static class QuantizationReference
{
    /// <summary>NF4's 16 levels as QLoRA and bitsandbytes publish them.</summary>
    public static readonly float[] Nf4 =
    {
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
        -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
        0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
        0.7229568362236023f, 1.0f,
    };

    /// <summary>bitsandbytes' FP4: bit 3 the sign, the low three bits one of eight magnitudes (times the block absmax).</summary>
    public static readonly float[] Fp4 = BuildFp4();

    static float[] BuildFp4()
    {
        float[] magnitude = { 0f, 0.0052083333f, 0.6666667f, 1.0f, 0.3333333f, 0.5f, 0.1666667f, 0.25f };
        return magnitude.Concat(magnitude.Select(m => -m)).ToArray();
    }

    /// <summary>
    /// bitsandbytes' create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): for i in 0..6 the means of
    /// neighbouring points of linspace(0.1, 1, 2^i + 1), times 10^(i-6), with both signs; then 0 and 1; sorted.
    /// </summary>
    public static float[] DynamicMap()
    {
        var values = new List<float>();
        for (int i = 0; i < 7; i++)
        {
            int items = (1 << i) + 1;
            var boundaries = Enumerable.Range(0, items).Select(k => 0.1 + k * 0.9 / (items - 1)).ToArray();
            for (int k = 0; k + 1 < items; k++)
            {
                double mean = (boundaries[k] + boundaries[k + 1]) / 2 * Math.Pow(10, i - 6);
                values.Add((float)mean);
                values.Add((float)-mean);
            }
        }
        values.Add(0f);
        values.Add(1f);
        values.Sort();
        return values.ToArray();
    }

    /// <summary>The index of the value in <paramref name="book"/> nearest <paramref name="x"/> (the first on a tie).</summary>
    public static int Nearest(float[] book, float x)
    {
        int best = 0;
        for (int k = 1; k < book.Length; k++)
            if (Math.Abs((double)x - book[k]) < Math.Abs((double)x - book[best])) best = k;
        return best;
    }

    /// <summary>The absolute maximum of each block of <paramref name="blockSize"/> values (the last may be short).</summary>
    public static float[] BlockAbsmax(float[] w, int blockSize)
    {
        var absmax = new float[(w.Length + blockSize - 1) / blockSize];
        for (int i = 0; i < w.Length; i++) absmax[i / blockSize] = Math.Max(absmax[i / blockSize], Math.Abs(w[i]));
        return absmax;
    }

    /// <summary>
    /// Blockwise 4-bit quantization and back: each value times its block's 1/absmax (0 for an all-zero block) goes
    /// to the nearest level, which times <paramref name="scales"/>[block] (the absmax, or the absmax as double
    /// quantization stores it) is the dequantized value.
    /// </summary>
    public static float[] FourBit(float[] w, float[] levels, int blockSize, float[]? scales = null)
    {
        var absmax = BlockAbsmax(w, blockSize);
        scales ??= absmax;
        var result = new float[w.Length];
        for (int i = 0; i < w.Length; i++)
        {
            float max = absmax[i / blockSize];
            float inverse = max > 0 ? 1f / max : 0f;
            result[i] = levels[Nearest(levels, w[i] * inverse)] * scales[i / blockSize];
        }
        return result;
    }

    /// <summary>
    /// The block maxima as double quantization stores and reads them: less their mean, quantized 256 at a time to
    /// the dynamic map with each 256's own absmax, then map value · that absmax + mean.
    /// </summary>
    public static float[] DoubleQuantizedScales(float[] absmax)
    {
        var map = DynamicMap();
        float mean = (float)absmax.Average(a => (double)a);
        var result = new float[absmax.Length];
        for (int start = 0; start < absmax.Length; start += 256)
        {
            int end = Math.Min(absmax.Length, start + 256);
            float max = 0;
            for (int i = start; i < end; i++) max = Math.Max(max, Math.Abs(absmax[i] - mean));
            float inverse = max > 0 ? 1f / max : 0f;
            for (int i = start; i < end; i++) result[i] = map[Nearest(map, (absmax[i] - mean) * inverse)] * max + mean;
        }
        return result;
    }

    /// <summary>LLM.int8's rows: q = round(w · 127/absmax) per row, back as q · absmax · (1/127).</summary>
    public static float[] Int8(float[] w, int rows, int columns)
    {
        var result = new float[w.Length];
        for (int r = 0; r < rows; r++)
        {
            float max = 0;
            for (int c = 0; c < columns; c++) max = Math.Max(max, Math.Abs(w[r * columns + c]));
            float factor = max > 0 ? 127f / max : 0f;
            for (int c = 0; c < columns; c++)
            {
                float q = MathF.Round(w[r * columns + c] * factor);
                result[r * columns + c] = q * max * (1f / 127);
            }
        }
        return result;
    }

    /// <summary>‖a − b‖ / ‖a‖ (Frobenius).</summary>
    public static double RelativeError(float[] a, float[] b)
    {
        double difference = 0, norm = 0;
        for (int i = 0; i < a.Length; i++)
        {
            difference += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
            norm += (double)a[i] * a[i];
        }
        return Math.Sqrt(difference / norm);
    }

    /// <summary>The largest |a − b|.</summary>
    public static double MaxDifference(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max();
}
