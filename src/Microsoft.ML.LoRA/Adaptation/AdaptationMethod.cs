namespace Microsoft.ML.LoRA.Adaptation;

/// <summary>Which weights domain adaptation changes.</summary>
public enum AdaptationMethod
{
    /// <summary>
    /// Low-rank adapters on the chosen linear layers of the base model (every transformer-layer linear by default); every other weight,
    /// the language-model head included, stays frozen. The output holds the adapters merged into the weights, or the
    /// unchanged weights plus a PEFT adapter folder.
    /// </summary>
    Lora,

    /// <summary>Every weight of the base model and the language-model head trains (continued pre-training in full).</summary>
    Full,
}
