using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models.Quantization;

/// <summary>
/// The values a quantized code stands for, as bitsandbytes defines them: the 16 levels of NF4 and of FP4 (a code
/// times its block's absolute maximum gives the weight back) and the 256 values of the signed 8-bit dynamic map that
/// double quantization stores block maxima in.
/// </summary>
internal static class CodeBooks
{
    /// <summary>
    /// NF4's levels, code 0 to 15, as QLoRA publishes them (bitsandbytes' get_4bit_type("nf4")): quantiles of a
    /// normal distribution scaled to [-1, 1], with an exact 0 (code 7).
    /// </summary>
    public static ReadOnlySpan<float> Nf4 =>
    [
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    ];

    /// <summary>
    /// FP4's levels, code 0 to 15, as bitsandbytes' get_4bit_type("fp4"): bit 3 is the sign and the low three bits a
    /// magnitude of 0, 0.0625, 8, 12, 4, 6, 2 or 3, divided by 12 (the format's largest) so that the levels span [-1, 1].
    /// </summary>
    public static ReadOnlySpan<float> Fp4 =>
    [
        0f, 0.0625f / 12, 8f / 12, 1f, 4f / 12, 6f / 12, 2f / 12, 3f / 12,
        -0f, -0.0625f / 12, -8f / 12, -1f, -4f / 12, -6f / 12, -2f / 12, -3f / 12,
    ];

    /// <summary>The 16 levels of a 4-bit format.</summary>
    public static ReadOnlySpan<float> Levels(BaseQuantization kind) => kind switch
    {
        BaseQuantization.Nf4 => Nf4,
        BaseQuantization.Fp4 => Fp4,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "only NF4 and FP4 have 4-bit levels"),
    };

    /// <summary>
    /// bitsandbytes' signed dynamic map, create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8), 256
    /// values in ascending order from -0.99297 to 1: for each exponent i = 0..6, the midpoints of linspace(0.1, 1,
    /// 2^i + 1) times 10^(i-6), with both signs, and 0 and 1. Computed once with the same float32 tensor operations
    /// as the Python original, so every value is the one bitsandbytes stores.
    /// </summary>
    public static ReadOnlySpan<float> Dynamic8Bit => DynamicMap.Value;

    static readonly Lazy<float[]> DynamicMap = new(CreateDynamicMap);

    static float[] CreateDynamicMap()
    {
        using var scope = torch.NewDisposeScope();
        var values = new List<float>(256);
        for (int i = 0; i < 7; i++)
        {
            int fractionItems = (1 << i) + 1;
            var boundaries = torch.linspace(0.1, 1, fractionItems, ScalarType.Float32);
            var means = boundaries.narrow(0, 0, fractionItems - 1).add(boundaries.narrow(0, 1, fractionItems - 1)).div(2.0);
            double power = Math.Pow(10, -6 + i);
            values.AddRange(means.mul(power).data<float>().ToArray());
            values.AddRange(means.mul(-power).data<float>().ToArray());
        }
        values.Add(0f);
        values.Add(1f);
        var map = values.ToArray();
        Array.Sort(map);
        return map;
    }
}
