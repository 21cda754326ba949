namespace Microsoft.ML.LoRA.Models.Quantization;

/// <summary>
/// How a frozen base weight is stored while an adapter trains over it (QLoRA keeps it in 4 bits and dequantizes it
/// for every product). The formats are those of bitsandbytes, which PEFT's QLoRA and LoftQ use.
/// </summary>
public enum BaseQuantization
{
    /// <summary>Not quantized: the weight stays dense in its own floating type.</summary>
    None,

    /// <summary>
    /// 4-bit NormalFloat (QLoRA): each block of 64 weights is divided by its absolute maximum and every value rounded
    /// to the nearest of 16 levels placed at quantiles of a normal distribution (4.5 bits a weight, 4.127 with double
    /// quantization).
    /// </summary>
    Nf4,

    /// <summary>
    /// 4-bit floating point as bitsandbytes defines it (a sign bit, two exponent bits, one mantissa bit), blockwise
    /// like <see cref="Nf4"/>: the same storage, levels spaced for uniform rather than normal values.
    /// </summary>
    Fp4,

    /// <summary>
    /// 8-bit integers with one fp32 scale a row (LLM.int8's vectorwise storage): q = round(127·w / row absmax),
    /// 8 + 32/columns bits a weight (8.03 for 1024 columns).
    /// </summary>
    Int8,
}
