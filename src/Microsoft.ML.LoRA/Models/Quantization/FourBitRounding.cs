namespace Microsoft.ML.LoRA.Models.Quantization;

/// <summary>
/// How a value already divided by its block's absolute maximum (so in [-1, 1]) becomes the 4-bit code of its nearest
/// level: the code starts at 0 (plus 8 for a negative value in a sign-magnitude format, where the thresholds apply to
/// |x|) and each threshold x exceeds adds its step. The thresholds are the midpoints between neighbouring levels in
/// ascending order, so this is bitsandbytes' decision tree (dQuantizeNF4, dQuantizeFP4) without the branches: a
/// value exactly on a midpoint takes the lower level, as there.
/// </summary>
internal sealed class FourBitRounding
{
    FourBitRounding(float[] thresholds, int[] steps, bool signMagnitude) =>
        (Thresholds, Steps, SignMagnitude) = (thresholds, steps, signMagnitude);

    /// <summary>The midpoints between neighbouring levels (of |x| when <see cref="SignMagnitude"/>), ascending.</summary>
    public float[] Thresholds { get; }

    /// <summary>What passing each threshold adds to the code: the next level's code minus the previous one's.</summary>
    public int[] Steps { get; }

    /// <summary>True when bit 3 is the sign and the thresholds apply to the magnitude (FP4).</summary>
    public bool SignMagnitude { get; }

    /// <summary>NF4: the 16 levels ascend with the code, so every step is 1.</summary>
    public static FourBitRounding Nf4 { get; } = FromAscending(CodeBooks.Nf4.ToArray(), Enumerable.Range(0, 16).ToArray(), signMagnitude: false);

    /// <summary>
    /// FP4: the eight magnitudes of codes 0-7 in ascending order are those of codes 0, 1, 6, 7, 4, 5, 2, 3. The
    /// thresholds are the decimal constants of bitsandbytes' dQuantizeFP4, which five of the seven midpoints miss by an
    /// ulp or a few (0.583333 against 0.5833334): a magnitude between the two takes the code bitsandbytes gives it.
    /// </summary>
    public static FourBitRounding Fp4 { get; } = new(
        [0.00260417f, 0.0859375f, 0.20833333f, 0.29166667f, 0.4166667f, 0.583333f, 0.8333333f],
        StepsBetween([0, 1, 6, 7, 4, 5, 2, 3]), signMagnitude: true);

    /// <summary>The rounding of a 4-bit format.</summary>
    public static FourBitRounding For(BaseQuantization kind) => kind switch
    {
        BaseQuantization.Nf4 => Nf4,
        BaseQuantization.Fp4 => Fp4,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "only NF4 and FP4 are 4-bit formats"),
    };

    /// <summary>
    /// From levels in ascending order and their codes: each threshold the midpoint of two neighbours, taken in double
    /// and rounded to float (for NF4 exactly the constants of bitsandbytes' dQuantizeNF4).
    /// </summary>
    static FourBitRounding FromAscending(float[] levels, int[] codes, bool signMagnitude)
    {
        var thresholds = new float[levels.Length - 1];
        for (int i = 0; i < thresholds.Length; i++) thresholds[i] = (float)(((double)levels[i] + levels[i + 1]) / 2);
        return new FourBitRounding(thresholds, StepsBetween(codes), signMagnitude);
    }

    /// <summary>What passing each threshold adds, for levels whose codes in ascending order are <paramref name="codes"/>.</summary>
    static int[] StepsBetween(int[] codes) => codes.Skip(1).Select((code, i) => code - codes[i]).ToArray();

    /// <summary>The code of <paramref name="x"/> (a value divided by its block's absolute maximum).</summary>
    public int Code(float x)
    {
        int code = 0;
        if (SignMagnitude)
        {
            if (x < 0) code = 8;
            x = MathF.Abs(x);
        }
        var thresholds = Thresholds;
        for (int t = 0; t < thresholds.Length; t++)
            if (x > thresholds[t]) code += Steps[t];
        return code;
    }
}
