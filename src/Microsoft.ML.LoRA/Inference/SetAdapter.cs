using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Inference;

/// <summary>
/// One adapter of a <see cref="LoraAdapterSet"/> while it is off the model: its per-layer adapters (factors, DoRA's
/// magnitudes, scalings) by layer name, and its own values of the base parameters it replaces (its classification
/// head and other saved modules, trained biases) by parameter name. Nothing of the base model is copied here.
/// </summary>
internal sealed class SetAdapter : IDisposable
{
    public SetAdapter(string name, string folder, PeftAdapterInfo info, IReadOnlyDictionary<string, ILinearAdapter> layers,
        IReadOnlyDictionary<string, Tensor> savedValues)
    {
        Name = name;
        Folder = folder;
        Info = info;
        Layers = layers;
        SavedValues = savedValues;
    }

    /// <summary>The name it was added under.</summary>
    public string Name { get; }

    /// <summary>The adapter folder it was read from.</summary>
    public string Folder { get; }

    /// <summary>What the adapter folder held.</summary>
    public PeftAdapterInfo Info { get; }

    /// <summary>The adapter of each adapted layer, by the layer's module name.</summary>
    public IReadOnlyDictionary<string, ILinearAdapter> Layers { get; }

    /// <summary>This adapter's values of base parameters it replaces (saved modules, biases), by parameter name.</summary>
    public IReadOnlyDictionary<string, Tensor> SavedValues { get; }

    /// <summary>Bytes of every tensor the adapter holds: its layers' parameters and its saved values.</summary>
    public long Bytes =>
        Layers.Values.SelectMany(a => a.Modules).SelectMany(m => m.Module.parameters()).Sum(TensorBytes)
        + SavedValues.Values.Sum(TensorBytes);

    static long TensorBytes(Tensor t) => t.numel() * t.ElementSize;

    public void Dispose()
    {
        foreach (var adapter in Layers.Values)
            foreach (var (_, module) in adapter.Modules) module.Dispose();
        foreach (var value in SavedValues.Values) value.Dispose();
    }
}
