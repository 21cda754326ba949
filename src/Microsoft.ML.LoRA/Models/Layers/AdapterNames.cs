namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// The names adapter variants give the modules they add to a <see cref="LoraLinear"/>: PEFT's names, so that a
/// layer's parameters read <c>lora_A.weight</c> and <c>lora_B.weight</c> as in PEFT's files and ours. Listed once,
/// here, because a parameter's name is all that tells an adapter's parameters from the base model's
/// (<see cref="LoraLinear.IsAdapterParameter"/>) when a model is saved, loaded or counted; a variant with parts of
/// its own (DoRA's <c>lora_magnitude_vector</c>) adds its names to <see cref="All"/>, and
/// <see cref="LoraLinear.Attach"/> refuses a variant that registers a name missing here.
/// </summary>
public static class AdapterNames
{
    /// <summary>LoRA's down projection A, a linear module with weight [r, in].</summary>
    public const string LoraA = "lora_A";

    /// <summary>LoRA's up projection B, a linear module with weight [out, r].</summary>
    public const string LoraB = "lora_B";

    /// <summary>DoRA's magnitude, a module holding one weight [out] (PEFT saves it under <c>&lt;layer&gt;.lora_magnitude_vector</c>).</summary>
    public const string LoraMagnitudeVector = "lora_magnitude_vector";

    /// <summary>Every name an adapter variant may register on a layer.</summary>
    public static IReadOnlyList<string> All { get; } = new[] { LoraA, LoraB, LoraMagnitudeVector };
}
