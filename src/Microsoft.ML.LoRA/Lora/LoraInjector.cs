using System.Text.RegularExpressions;
using Microsoft.ML.LoRA.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Lora;

/// <summary>What injection did: which layers carry adapters and which modules train in full.</summary>
public sealed record LoraInjectionReport(IReadOnlyList<string> AdaptedModules, IReadOnlyList<string> SavedModules)
{
    /// <summary>For a LoftQ initialisation, each adapted layer's approximation errors; empty otherwise.</summary>
    public IReadOnlyDictionary<string, LoftqError> LoftqErrors { get; init; } = new Dictionary<string, LoftqError>();
}

/// <summary>
/// How well a LoftQ-initialised layer approximates its full-precision weight W, relative to ‖W‖ (Frobenius):
/// <see cref="QuantizedOnly"/> is ‖W − Q(W)‖, what a quantized base leaves with a plain initialisation (B = 0);
/// <see cref="WithAdapter"/> is ‖W − (Q + s·B·A)‖ after LoftQ.
/// </summary>
public sealed record LoftqError(double QuantizedOnly, double WithAdapter);

/// <summary>
/// Model-wide LoRA: freezes every base weight, attaches adapters to the linear layers the options select, and marks
/// the modules to save (by default the head and any module the checkpoint lacked, such as a masked-LM checkpoint's
/// pooler) and the chosen biases trainable. Frozen weights get no gradient and, since the optimizer is built from
/// trainable parameters only, no optimizer state.
/// </summary>
public static class LoraInjector
{
    const string AllLinear = "all-linear";

    /// <summary>Applies <paramref name="options"/> to <paramref name="model"/>.</summary>
    public static LoraInjectionReport Apply(SequenceClassifier model, LoraOptions options)
    {
        options.Validate();
        var linears = LinearLayers(model);
        var adapted = ResolveTargets(linears.Keys, model.Layout, options, model.CreatedModules);
        var saved = ResolveModulesToSave(model, options, adapted);
        var overlap = adapted.Intersect(saved).ToList();
        if (overlap.Count > 0)
            throw new ArgumentException($"'{overlap[0]}' is both a LoRA target and a module to save; choose one.");

        foreach (var p in model.parameters()) p.requires_grad = false;
        var loftqErrors = new Dictionary<string, LoftqError>(StringComparer.Ordinal);
        lock (TorchRandomLock.Sync)   // A's initialisation draws from libtorch's global generator
        {
            TorchScopes.Change(model, () =>
            {
                foreach (var name in adapted)
                    if (linears[name].AttachAdapter(options.RankFor(name), options.AlphaFor(name), options.Dropout, options.Scaling, options.Init, options.UseDora,
                            options.EffectiveLoftqBits, options.LoftqIterations) is { } error)
                        loftqErrors[name] = error;
            });
        }
        MarkTrainable(model, saved, options.Bias, adapted);
        return new LoraInjectionReport(adapted, saved) { LoftqErrors = loftqErrors };
    }

    /// <summary>Every LoRA-capable linear layer of the model, by full module name.</summary>
    public static Dictionary<string, LoraLinear> LinearLayers(nn.Module model) =>
        model.named_modules().Where(m => m.module is LoraLinear)
            .ToDictionary(m => m.name, m => (LoraLinear)m.module, StringComparer.Ordinal);

    /// <summary>
    /// The names of the linear layers the options select, in model order. <c>all-linear</c> leaves out the head and the
    /// modules the checkpoint lacked (<paramref name="created"/>): those have no pre-trained weights to adapt and train
    /// in full instead.
    /// </summary>
    public static IReadOnlyList<string> ResolveTargets(IEnumerable<string> linearNames, FamilyLayout layout, LoraOptions options,
        IReadOnlyCollection<string>? created = null)
    {
        created ??= Array.Empty<string>();
        var names = linearNames.ToList();
        var head = new HashSet<string>(layout.HeadModules, StringComparer.Ordinal);
        var patterns = new List<Regex>();
        if (options.TargetModulesRegex is { } regex) patterns.Add(new Regex($"^(?:{regex})$"));
        var switches = SwitchesOn(options);
        bool anyExplicit = options.TargetModules is not null || options.TargetModulesRegex is not null || switches.Count > 0;
        if (!anyExplicit) switches = DefaultSwitches.ToList();
        foreach (var s in switches)
        {
            if (!layout.SwitchPatterns.TryGetValue(s, out var pattern)) continue;
            patterns.Add(new Regex($"^(?:{pattern})$"));
        }
        var entries = options.TargetModules ?? Array.Empty<string>();
        bool allLinear = entries.Any(e => string.Equals(e, AllLinear, StringComparison.OrdinalIgnoreCase));
        var plain = entries.Where(e => !string.Equals(e, AllLinear, StringComparison.OrdinalIgnoreCase)).ToList();

        var selected = names.Where(name =>
            (allLinear && !head.Contains(name) && !created.Any(c => ModuleNames.Overlaps(c, name)))
            || plain.Any(t => MatchesNameOrSuffix(name, t))
            || patterns.Any(p => p.IsMatch(name))).ToList();

        if (options.LayersToTransform is { Count: > 0 } layers)
        {
            selected = selected.Where(name => ModulePattern.LayerIndexOf(name, options.LayersPattern?.ToList()) is int index && layers.Contains(index)).ToList();
        }
        var unknown = plain.Where(t => !names.Any(n => MatchesNameOrSuffix(n, t))).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException(
                $"LoRA target(s) {string.Join(", ", unknown.Select(u => $"'{u}'"))} match no linear layer of this {layout.Family} model. " +
                $"Linear layers look like: {string.Join(", ", names.Take(6))}, ...");
        return selected;
    }

    /// <summary>PEFT's list rule: the name equals the entry or ends with "." + entry.</summary>
    public static bool MatchesNameOrSuffix(string name, string entry) =>
        name == entry || name.EndsWith("." + entry, StringComparison.Ordinal);

    static List<LoraSwitch> SwitchesOn(LoraOptions o)
    {
        var on = new List<LoraSwitch>();
        if (o.LoraQuery) on.Add(LoraSwitch.Query);
        if (o.LoraKey) on.Add(LoraSwitch.Key);
        if (o.LoraValue) on.Add(LoraSwitch.Value);
        if (o.LoraProjection) on.Add(LoraSwitch.Projection);
        if (o.LoraMlp) on.Add(LoraSwitch.Mlp);
        if (o.LoraHead) on.Add(LoraSwitch.Head);
        return on;
    }

    /// <summary>
    /// What is adapted when no target is named: every linear layer of the transformer layers (attention query, key,
    /// value and output, both feed-forward layers), not the head. Chosen from measurements (docs/quality.md): on a
    /// pre-trained BERT these adapters beat PEFT's usual query + value by about 3 points on SST-2 and TREC at the same
    /// learning rate.
    /// </summary>
    public static readonly IReadOnlyList<LoraSwitch> DefaultSwitches =
        new[] { LoraSwitch.Query, LoraSwitch.Key, LoraSwitch.Value, LoraSwitch.Projection, LoraSwitch.Mlp };

    /// <summary>The transformer layer a module or parameter belongs to (<c>...layer.3....</c> gives 3), or null.</summary>
    internal static int? LayerIndexOf(string name) => ModulePattern.LayerIndexOf(name);

    /// <summary>The modules of <paramref name="modules"/> not inside another of them (a module inside trains with it anyway).</summary>
    internal static List<string> Outermost(IEnumerable<string> modules)
    {
        var list = modules.Distinct().ToList();
        return list.Where(m => !list.Any(o => o != m && m.StartsWith(o + ".", StringComparison.Ordinal))).ToList();
    }

    /// <summary>
    /// The modules that train in full: <see cref="LoraOptions.ModulesToSave"/> resolved against the model, or by
    /// default the family's head and the modules the checkpoint lacked, except those holding adapters.
    /// </summary>
    internal static IReadOnlyList<string> ResolveModulesToSave(SequenceClassifier model, LoraOptions options, IReadOnlyList<string> adapted)
    {
        if (options.ModulesToSave is null)
            return Outermost(model.Layout.HeadModules.Concat(model.CreatedModules).Where(m => !adapted.Any(a => ModuleNames.Overlaps(a, m))));
        var moduleNames = model.named_modules().Select(m => m.name).Where(n => n.Length > 0).ToList();
        var result = new List<string>();
        foreach (var entry in options.ModulesToSave)
        {
            var matches = moduleNames.Where(n => MatchesNameOrSuffix(n, entry)).ToList();
            if (matches.Count == 0)
                throw new ArgumentException($"Module to save '{entry}' matches no module of this {model.Layout.Family} model.");
            result.AddRange(Outermost(matches));
        }
        return result.Distinct().ToList();
    }

    static void MarkTrainable(SequenceClassifier model, IReadOnlyList<string> saved, LoraBias bias, IReadOnlyList<string> adapted)
    {
        foreach (var (name, p) in model.named_parameters())
        {
            bool isLora = LoraLinear.IsAdapterParameter(name);
            bool inSaved = saved.Any(s => name.StartsWith(s + ".", StringComparison.Ordinal));
            bool isBias = name.EndsWith(".bias", StringComparison.Ordinal);
            bool biasTrains = isBias && (bias == LoraBias.All
                || (bias == LoraBias.LoraOnly && adapted.Any(a => name == a + ".bias")));
            p.requires_grad = isLora || inSaved || biasTrains;
        }
    }

    /// <summary>
    /// The shortest dotted suffixes that select exactly <paramref name="adapted"/> among <paramref name="allModules"/>
    /// under PEFT's list rule (for a readable <c>target_modules</c> in adapter_config.json).
    /// </summary>
    public static IReadOnlyList<string> MinimalSuffixes(IReadOnlyCollection<string> adapted, IReadOnlyCollection<string> allModules)
    {
        var adaptedSet = new HashSet<string>(adapted, StringComparer.Ordinal);
        var result = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var name in adapted)
        {
            if (result.Any(s => MatchesNameOrSuffix(name, s))) continue;
            var parts = name.Split('.');
            for (int k = 1; k <= parts.Length; k++)
            {
                var suffix = string.Join('.', parts[^k..]);
                if (allModules.Where(n => MatchesNameOrSuffix(n, suffix)).All(adaptedSet.Contains))
                {
                    result.Add(suffix);
                    break;
                }
            }
        }
        return result.ToList();
    }
}
