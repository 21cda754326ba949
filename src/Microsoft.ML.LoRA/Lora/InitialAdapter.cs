using Microsoft.ML.LoRA.Models;

namespace Microsoft.ML.LoRA.Lora;

/// <summary>
/// Starts a LoRA fit from an existing PEFT adapter instead of fresh factors: the adapter's layers are attached (where
/// the fit's own targets did not already attach them) and its A, B and scalings copied in, and every adapter factor
/// of the model trains. A typical source is the adapter <c>lora adapt --keep-adapter</c> leaves after adapting the base
/// model to unlabelled domain text. Tensors other than adapter factors in the folder (a saved head) are copied too.
/// </summary>
public static class InitialAdapter
{
    /// <summary>Loads the adapter in <paramref name="folder"/> into <paramref name="model"/>, prepared for LoRA training.</summary>
    /// <exception cref="Checkpoints.CheckpointFormatException">The adapter does not fit the model (another base, another rank on a targeted layer).</exception>
    public static PeftAdapterInfo Apply(SequenceClassifier model, string folder)
    {
        var info = PeftAdapter.Load(model, folder);
        foreach (var (name, p) in model.named_parameters())
            if (LoraLinear.IsAdapterParameter(name)) p.requires_grad = true;
        return info;
    }
}
