using System.Text.Json.Serialization;

namespace Microsoft.ML.LoRA.Models.Quantization;

/// <summary>
/// How a frozen base weight is stored while an adapter trains over it (QLoRA keeps it in 4 bits and dequantizes it
/// for every product). The 4- and 8-bit formats are those of bitsandbytes, which PEFT's QLoRA and LoftQ use; the
/// 16-bit ones keep a bf16 or fp16 checkpoint's weights as the checkpoint stores them.
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter<BaseQuantization>))]
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

    /// <summary>
    /// bfloat16, 16 bits a weight: a bf16 checkpoint's weights exactly as stored (widening them to fp32 for a product
    /// is exact), an fp32 checkpoint's rounded to the nearest bf16. Half of fp32's memory with none of a 4-bit
    /// format's rounding; no block scales.
    /// </summary>
    BFloat16,

    /// <summary>IEEE half precision, 16 bits a weight: an fp16 checkpoint's weights exactly as stored, as <see cref="BFloat16"/> for bf16.</summary>
    Float16,
}
