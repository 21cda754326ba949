using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;

namespace Microsoft.ML.LoRA.Adaptation;

/// <summary>
/// LoRA on a <see cref="LanguageModel"/>: the same target rules as fine-tuning (<see cref="LoraInjector.ResolveTargets"/>:
/// lists, regex, switches, every transformer-layer linear by default), applied to the base model's linear layers only, so adapters
/// carry the names a classifier on the same base has. Every other weight is frozen, the language-model head included;
/// <see cref="LoraOptions.ModulesToSave"/> (base modules, none by default) and the chosen biases of the base train too.
/// </summary>
internal static class LanguageModelLora
{
    /// <summary>Freezes the model, attaches the adapters and marks what trains.</summary>
    /// <exception cref="ArgumentException">A target or module to save matches nothing, or the options select nothing to train.</exception>
    public static LoraInjectionReport Apply(LanguageModel model, LoraOptions options)
    {
        options.Validate();
        var prefix = model.Layout.BasePrefix + ".";
        var linears = LoraInjector.LinearLayers(model)
            .Where(l => l.Key.StartsWith(prefix, StringComparison.Ordinal))
            .ToDictionary(l => l.Key, l => l.Value, StringComparer.Ordinal);
        var adapted = LoraInjector.ResolveTargets(linears.Keys, model.Layout, options);
        var saved = ModulesToSave(model, options, prefix);
        var overlap = adapted.Where(a => saved.Any(s => a == s || a.StartsWith(s + ".", StringComparison.Ordinal))).ToList();
        if (overlap.Count > 0)
            throw new ArgumentException($"'{overlap[0]}' is both a LoRA target and inside a module to save; choose one.");
        if (adapted.Count == 0 && saved.Count == 0 && options.Bias == LoraBias.None)
            throw new ArgumentException("The LoRA options select no layer to adapt and no module to save: domain adaptation would train nothing.");

        foreach (var p in model.parameters()) p.requires_grad = false;
        lock (TorchRandomLock.Sync)   // A's initialisation draws from libtorch's global generator
        {
            TorchScopes.Change(model, () =>
            {
                foreach (var name in adapted)
                    linears[name].AttachAdapter(options.Rank, options.Alpha, options.Dropout, options.Scaling, options.Init, loftqBits: options.EffectiveLoftqBits, loftqIterations: options.LoftqIterations);
            });
        }
        foreach (var (name, p) in model.named_parameters())
        {
            bool isLora = LoraLinear.IsAdapterParameter(name);
            bool inBase = name.StartsWith(prefix, StringComparison.Ordinal);
            bool inSaved = saved.Any(s => name.StartsWith(s + ".", StringComparison.Ordinal));
            bool isBias = name.EndsWith(".bias", StringComparison.Ordinal);
            bool biasTrains = inBase && isBias && (options.Bias == LoraBias.All
                || (options.Bias == LoraBias.LoraOnly && adapted.Any(a => name == a + ".bias")));
            p.requires_grad = isLora || inSaved || biasTrains;
        }
        return new LoraInjectionReport(adapted, saved);
    }

    /// <summary>The base modules <see cref="LoraOptions.ModulesToSave"/> names (outermost matches), none when it is null.</summary>
    static IReadOnlyList<string> ModulesToSave(LanguageModel model, LoraOptions options, string prefix)
    {
        if (options.ModulesToSave is not { Count: > 0 } entries) return Array.Empty<string>();
        var names = model.named_modules().Select(m => m.name).Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).ToList();
        var result = new List<string>();
        foreach (var entry in entries)
        {
            var matches = names.Where(n => LoraInjector.MatchesNameOrSuffix(n, entry)).ToList();
            if (matches.Count == 0)
                throw new ArgumentException($"Module to save '{entry}' matches no module of this {model.Layout.Family} base model " +
                    $"(domain adaptation trains base modules only; the language-model head stays frozen).");
            result.AddRange(matches.Where(m => !matches.Any(o => o != m && m.StartsWith(o + ".", StringComparison.Ordinal))));
        }
        return result.Distinct().ToList();
    }
}
