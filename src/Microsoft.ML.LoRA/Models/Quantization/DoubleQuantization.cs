namespace Microsoft.ML.LoRA.Models.Quantization;

/// <summary>
/// QLoRA's double quantization of the per-block maxima of a 4-bit weight (bitsandbytes' compress_statistics): their
/// mean is subtracted, and the centred values are quantized blockwise, 256 a block, each block divided by its own
/// fp32 absolute maximum and every value rounded to the nearest of the 256 values of the signed dynamic map
/// (<see cref="CodeBooks.Dynamic8Bit"/>). A block maximum then costs 8 bits plus 32/256, instead of 32.
/// </summary>
internal static class DoubleQuantization
{
    /// <summary>Block maxima per second-level block.</summary>
    public const int BlockSize = 256;

    /// <summary>The midpoints between neighbouring values of the dynamic map, (a + b)·0.5 in float as bitsandbytes takes them.</summary>
    static readonly Lazy<float[]> Midpoints = new(() =>
    {
        var map = CodeBooks.Dynamic8Bit;
        var midpoints = new float[map.Length - 1];
        for (int i = 0; i < midpoints.Length; i++) midpoints[i] = (map[i] + map[i + 1]) * 0.5f;
        return midpoints;
    });

    /// <summary>The number of second-level blocks (and fp32 maxima) for <paramref name="count"/> block maxima.</summary>
    public static long SecondLevelBlocks(long count) => (count + BlockSize - 1) / BlockSize;

    /// <summary>
    /// Quantizes <paramref name="count"/> block maxima less <paramref name="offset"/> (their mean): one 8-bit code
    /// each into <paramref name="codes"/>, one fp32 absolute maximum per 256 into <paramref name="secondAbsmax"/>. A
    /// second-level block that is all zero keeps the scale 0 (its codes then stand for 0 whatever they are).
    /// </summary>
    public static unsafe void Quantize(float* absmax, long count, float offset, byte* codes, float* secondAbsmax)
    {
        var midpoints = Midpoints.Value;
        for (long block = 0, start = 0; start < count; block++, start += BlockSize)
        {
            long end = Math.Min(count, start + BlockSize);
            float max = 0;
            for (long i = start; i < end; i++) max = MathF.Max(max, MathF.Abs(absmax[i] - offset));
            secondAbsmax[block] = max;
            float inverse = max > 0 ? 1f / max : 0f;
            for (long i = start; i < end; i++) codes[i] = Nearest(midpoints, (absmax[i] - offset) * inverse);
        }
    }

    /// <summary>The code of the map value nearest <paramref name="x"/>: how many midpoints it exceeds (a binary search).</summary>
    static byte Nearest(float[] midpoints, float x)
    {
        int low = 0, high = midpoints.Length;   // the answer lies in [low, high]
        while (low < high)
        {
            int middle = (low + high) >> 1;
            if (x > midpoints[middle]) low = middle + 1;
            else high = middle;
        }
        return (byte)low;
    }
}
