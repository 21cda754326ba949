using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using TorchSharp;

namespace Microsoft.ML.LoRA.Adaptation;

/// <summary>
/// Writes the adapters of an adapted <see cref="LanguageModel"/> as a PEFT adapter folder in the very format
/// <see cref="PeftAdapter.Save"/> writes for a classifier, with the classifier's module names
/// (<c>bert.encoder.layer.0.attention.self.query</c>, ...), so that <see cref="PeftAdapter.Load"/> puts it onto a
/// classifier built on the same base. The adapters are copied onto such a classifier (with nothing else trainable, so
/// no head is saved) and that is saved; <c>task_type</c> is then null, as the adapter belongs to no task head.
/// </summary>
internal static class AdaptationAdapter
{
    /// <summary>Writes adapter_config.json and adapter_model.safetensors into <paramref name="directory"/>.</summary>
    /// <param name="model">The adapted model.</param>
    /// <param name="options">The LoRA options it was adapted with.</param>
    /// <param name="adapted">The layers that carry adapters.</param>
    /// <param name="directory">The adapter folder.</param>
    /// <param name="baseModelNameOrPath">Written as base_model_name_or_path.</param>
    public static void Save(LanguageModel model, LoraOptions options, IReadOnlyList<string> adapted, string directory, string? baseModelNameOrPath)
    {
        using var carrier = ModelFactory.Create(model.Config, model.Config.NumLabels);
        foreach (var p in carrier.parameters()) p.requires_grad = false;
        var targets = LoraInjector.LinearLayers(carrier);
        var sources = LoraInjector.LinearLayers(model);
        lock (TorchRandomLock.Sync)
        {
            TorchScopes.Change(carrier, () =>
            {
                foreach (var name in adapted)
                    targets[name].AttachAdapter(options.Rank, options.Alpha, options.Dropout, options.Scaling, options.Init, loftqBits: options.EffectiveLoftqBits, loftqIterations: options.LoftqIterations);
            });
        }
        var carrierParameters = carrier.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        using (torch.no_grad())
        {
            foreach (var name in adapted)
            {
                var (source, target) = (sources[name], targets[name]);
                target.SetScaling(source.Alpha, source.Scaling);
                target.LoraA.copy_(source.LoraA);
                target.LoraB.copy_(source.LoraB);
            }
            foreach (var (name, p) in model.named_parameters())
            {
                if (!p.requires_grad || LoraLinear.IsAdapterParameter(name)) continue;
                var target = carrierParameters[name];   // trained base modules and biases: the classifier has them too
                target.copy_(p);
                target.requires_grad = true;
            }
        }
        PeftAdapter.Save(carrier, directory, options, baseModelNameOrPath);

        var configPath = Path.Combine(directory, PeftAdapter.ConfigFile);
        var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        config["task_type"] = null;
        AtomicFile.WriteAllText(configPath, config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
