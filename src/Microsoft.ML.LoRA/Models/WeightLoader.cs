using Microsoft.ML.LoRA.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models;

/// <summary>What loading a checkpoint into a model did.</summary>
public sealed record WeightLoadReport(
    int LoadedTensors,
    IReadOnlyList<string> CreatedModules,
    IReadOnlyList<string> IgnoredTensors);

/// <summary>
/// Copies a Hugging Face checkpoint's tensors into a model by name. It accepts checkpoints saved with or without the
/// family prefix (<c>bert.</c>, <c>distilbert.</c>, <c>roberta.</c>, <c>transformer.</c>), old LayerNorm names
/// (<c>gamma</c>/<c>beta</c>), and extra pre-training heads (ignored). A missing classification head (or BERT pooler)
/// is created and reported; a head with another number of labels is replaced and reported. Any other missing tensor
/// or shape mismatch is an error that names the tensors.
/// </summary>
public static class WeightLoader
{
    /// <summary>
    /// Copies the tensors of <paramref name="source"/> into <paramref name="model"/>'s base parameters (LoRA factors are
    /// left alone) and reports what was created or ignored; <paramref name="log"/> hears the same in words.
    /// </summary>
    /// <exception cref="CheckpointFormatException">A needed tensor is missing or has another shape than the config implies.</exception>
    public static WeightLoadReport Load(SequenceClassifier model, ITensorSource source, Action<string>? log = null)
    {
        var layout = model.Layout;
        var prefix = layout.BasePrefix + ".";
        var available = new HashSet<string>(source.Names, StringComparer.Ordinal);
        var used = new HashSet<string>(StringComparer.Ordinal);
        var missing = new List<string>();
        var mismatched = new List<string>();
        var created = new SortedSet<string>(StringComparer.Ordinal);
        int loaded = 0;

        using (torch.no_grad())
        {
            foreach (var (name, expected, store) in Targets(model))
            {
                var creatable = layout.CreatableModules.FirstOrDefault(m => name.StartsWith(m + ".", StringComparison.Ordinal));
                var stored = Candidates(name, prefix).FirstOrDefault(available.Contains);
                if (stored is null)
                {
                    if (creatable is not null) created.Add(creatable);
                    else missing.Add(name);
                    continue;
                }
                used.Add(stored);
                var shape = source.Shape(stored);
                if (!shape.SequenceEqual(expected))
                {
                    if (creatable is not null && layout.HeadModules.Any(h => name.StartsWith(h + ".", StringComparison.Ordinal)))
                    {
                        created.Add(creatable);
                        continue;
                    }
                    mismatched.Add($"'{stored}' is [{string.Join(", ", shape)}] in the checkpoint but the config implies [{string.Join(", ", expected)}]");
                    continue;
                }
                using var value = source.ReadFloat32(stored);
                store(value);
                loaded++;
            }
        }

        if (missing.Count > 0)
            throw new CheckpointFormatException(string.Join(", ", source.Files),
                $"the checkpoint lacks {missing.Count} tensor(s) a {model.Config.ModelType} model with {model.Config.Source} needs, e.g. " +
                $"{string.Join(", ", missing.Take(5))} (is it a checkpoint of another model type, or a base model without the '{layout.BasePrefix}.' tensors?)");
        if (mismatched.Count > 0)
            throw new CheckpointFormatException(string.Join(", ", source.Files),
                $"{mismatched.Count} tensor(s) disagree with the shapes {model.Config.Source} implies: {string.Join("; ", mismatched.Take(5))}");

        foreach (var module in created)
        {
            model.ResetModule(module);
            log?.Invoke(layout.HeadModules.Any(h => ModuleNames.Overlaps(h, module))
                ? $"'{module}' was not in the checkpoint (or had another number of labels); created it with random weights ({model.NumLabels} labels)."
                : $"'{module}' was not in the checkpoint; created it with random weights.");
        }
        model.CreatedModules = created.ToList();
        var ignored = available.Except(used)
            .Where(n => !layout.IgnoredCheckpointPrefixes.Any(p => n.Contains(p, StringComparison.Ordinal)))
            .OrderBy(n => n, StringComparer.Ordinal).ToList();
        if (ignored.Count > 0)
            log?.Invoke($"Ignored {ignored.Count} checkpoint tensor(s) the model does not use, e.g. {string.Join(", ", ignored.Take(3))}.");
        return new WeightLoadReport(loaded, created.ToList(), ignored);
    }

    /// <summary>
    /// Every base tensor the checkpoint fills, by Hugging Face name: its shape as stored and how it is stored. The
    /// base parameters are copied into; a linear layer whose base is quantized (it holds no <c>weight</c> parameter)
    /// packs its weight as it is read, so a quantized model never holds its weights in fp32 at once.
    /// </summary>
    static IEnumerable<(string Name, long[] Shape, Action<Tensor> Store)> Targets(SequenceClassifier model)
    {
        foreach (var (name, parameter) in model.named_parameters())
            if (!LoraLinear.IsAdapterParameter(name)) yield return (name, parameter.shape, value => parameter.copy_(value));
        foreach (var (module, child) in model.named_modules())
        {
            if (child is not LoraLinear { IsQuantized: true } layer) continue;
            var shape = layer.FanInFanOut ? new[] { layer.InFeatures, layer.OutFeatures } : new[] { layer.OutFeatures, layer.InFeatures };
            yield return (module + ".weight", shape, value =>
            {
                using var dense = layer.FanInFanOut ? value.t().contiguous() : value.alias();
                layer.ReplaceBaseWeight(dense);
            });
        }
    }

    /// <summary>Names under which a parameter may be stored.</summary>
    static IEnumerable<string> Candidates(string name, string prefix)
    {
        yield return name;
        if (name.StartsWith(prefix, StringComparison.Ordinal))
        {
            var bare = name[prefix.Length..];
            yield return bare;
            foreach (var legacy in LegacyNames(bare)) yield return legacy;
        }
        foreach (var legacy in LegacyNames(name)) yield return legacy;
    }

    static IEnumerable<string> LegacyNames(string name)
    {
        if (name.EndsWith("LayerNorm.weight", StringComparison.Ordinal)) yield return name[..^"weight".Length] + "gamma";
        if (name.EndsWith("LayerNorm.bias", StringComparison.Ordinal)) yield return name[..^"bias".Length] + "beta";
    }
}
