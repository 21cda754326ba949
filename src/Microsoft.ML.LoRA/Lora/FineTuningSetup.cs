using Microsoft.ML.LoRA.Models;

namespace Microsoft.ML.LoRA.Lora;

/// <summary>
/// What a fine-tuning method made trainable: the layers that carry adapters (LoRA only), the modules that train in
/// full (the head and the modules the checkpoint lacked, by default), and the transformer layers that train in full
/// (last-layers and full fine-tuning).
/// </summary>
public sealed record FineTuningReport(
    FineTuning Method,
    IReadOnlyList<string> AdaptedModules,
    IReadOnlyList<string> SavedModules,
    IReadOnlyList<int> TrainedLayers)
{
    /// <summary>For a LoftQ initialisation, each adapted layer's approximation errors; empty otherwise.</summary>
    public IReadOnlyDictionary<string, LoftqError> LoftqErrors { get; init; } = new Dictionary<string, LoftqError>();
}

/// <summary>
/// Prepares a loaded model for one <see cref="FineTuning"/> method: LoRA goes through <see cref="LoraInjector"/>;
/// head-only, last-layers and full fine-tuning freeze the base and then unfreeze the head (and
/// <see cref="LoraOptions.ModulesToSave"/>, which replaces the default head), the last N layers with the modules
/// that follow them, or everything. For the non-LoRA methods the adapter settings of <see cref="LoraOptions"/>
/// (rank, targets, bias mode) do not apply.
/// </summary>
public static class FineTuningSetup
{
    /// <summary>Applies <paramref name="method"/> to <paramref name="model"/>.</summary>
    /// <exception cref="ArgumentException">LastLayers asks for more layers than the model has, or a module to save matches nothing.</exception>
    public static FineTuningReport Apply(SequenceClassifier model, FineTuning method, LoraOptions lora)
    {
        ArgumentNullException.ThrowIfNull(method);
        if (method.IsLora)
        {
            var injection = LoraInjector.Apply(model, lora);
            return new FineTuningReport(method, injection.AdaptedModules, injection.SavedModules, Array.Empty<int>()) { LoftqErrors = injection.LoftqErrors };
        }

        int layerCount = model.Config.NumLayers;
        if (method.Method == FineTuningMethod.LastLayers && method.Layers > layerCount)
            throw new ArgumentException($"FineTuning.LastLayers({method.Layers}) asks for more layers than this {model.Config.ModelType} model has ({layerCount}); use FineTuning.Full to train them all.");
        var saved = LoraInjector.ResolveModulesToSave(model, lora, Array.Empty<string>());
        var layers = method.Method switch
        {
            FineTuningMethod.LastLayers => Enumerable.Range(layerCount - method.Layers, method.Layers).ToList(),
            FineTuningMethod.Full => Enumerable.Range(0, layerCount).ToList(),
            _ => new List<int>(),
        };
        var after = method.Method == FineTuningMethod.LastLayers ? model.Layout.ModulesAfterLayers : Array.Empty<string>();
        foreach (var (name, p) in model.named_parameters())
        {
            p.requires_grad = method.Method == FineTuningMethod.Full
                || saved.Concat(after).Any(m => name.StartsWith(m + ".", StringComparison.Ordinal))
                || (LoraInjector.LayerIndexOf(name) is int index && layers.Contains(index));
        }
        return new FineTuningReport(method, Array.Empty<string>(), saved, layers);
    }
}
