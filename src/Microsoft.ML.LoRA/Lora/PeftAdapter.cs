using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Lora;

/// <summary>What an adapter folder held once loaded into a model.</summary>
public sealed record PeftAdapterInfo(
    int Rank,
    double Alpha,
    bool UseRsLora,
    IReadOnlyList<string> AdaptedModules,
    IReadOnlyList<string> SavedTensors,
    JsonObject Config);

/// <summary>
/// PEFT's adapter folder: <c>adapter_config.json</c> and <c>adapter_model.safetensors</c> with keys
/// <c>base_model.model.&lt;module&gt;.lora_A.weight</c> [r, in] and <c>.lora_B.weight</c> [out, r]; modules trained in
/// full (<c>modules_to_save</c>) and trained biases are stored under their plain names with the same prefix.
/// Python users load it with <c>PeftModel.from_pretrained(base_model, folder)</c>.
/// </summary>
public static class PeftAdapter
{
    public const string ConfigFile = "adapter_config.json";
    public const string WeightsFile = "adapter_model.safetensors";
    const string KeyPrefix = "base_model.model.";

    /// <summary>
    /// Writes the model's adapters and trainable modules as a PEFT adapter folder. An adapter on the classification
    /// head is written folded into the head's weight (<see cref="IsPeftHead"/>): PEFT's sequence-classification task
    /// saves and loads the head whole, as a module to save, and applies no adapter inside it.
    /// </summary>
    public static void Save(SequenceClassifier model, string directory, LoraOptions options, string? baseModelNameOrPath = null)
    {
        Directory.CreateDirectory(directory);
        using var scope = torch.NewDisposeScope();
        var linears = LoraInjector.LinearLayers(model);
        var adaptedLayers = linears.Where(l => l.Value.HasAdapter).Select(l => l.Key).ToList();
        var folded = adaptedLayers.Where(IsPeftHead).ToList();
        var adapted = adaptedLayers.Except(folded).ToList();
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, parameter) in model.ParametersBeyondBase())
            if (!folded.Any(f => name.StartsWith(f + ".", StringComparison.Ordinal))) tensors[PeftKey(name)] = parameter;
        if (folded.Count > 0)
        {
            foreach (var (name, parameter) in model.named_parameters())
                if (IsPeftHead(name) && !LoraLinear.IsAdapterParameter(name)) tensors.TryAdd(name, parameter);
            foreach (var name in folded) tensors[name + ".weight"] = linears[name].MergedWeight();
        }
        var saved = SavedModules(model, adapted, tensors.Keys.ToHashSet(StringComparer.Ordinal));
        var allModules = model.named_modules().Select(m => m.name).Where(n => n.Length > 0).ToList();
        var config = BuildConfig(model, options, adapted, allModules, saved, baseModelNameOrPath);
        SafeTensorsWriter.Save(Path.Combine(directory, WeightsFile), tensors.ToDictionary(t => KeyPrefix + t.Key, t => t.Value, StringComparer.Ordinal),
            new Dictionary<string, string> { ["format"] = "pt" });
        AtomicFile.WriteAllText(Path.Combine(directory, ConfigFile), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>
    /// Whether <paramref name="name"/> (a module or parameter) lies in the classification head as PEFT's
    /// sequence-classification task names it (PeftModelForSequenceClassification's "classifier" and "score"), which
    /// PEFT keeps as a module to save.
    /// </summary>
    static bool IsPeftHead(string name) =>
        name is "classifier" or "score" || name.StartsWith("classifier.", StringComparison.Ordinal) || name.StartsWith("score.", StringComparison.Ordinal);

    /// <summary>The adapter_config.json PEFT expects for this model and these options.</summary>
    public static JsonObject BuildConfig(SequenceClassifier model, LoraOptions options, IReadOnlyList<string> adapted,
        IReadOnlyCollection<string> allModules, IReadOnlyList<string> savedModules, string? baseModelNameOrPath)
    {
        // PEFT scales by lora_alpha / r (or / sqrt(r) with use_rslora); the plain-alpha convention is expressed by
        // writing lora_alpha = alpha * r, which gives PEFT the same factor.
        var linears = LoraInjector.LinearLayers(model);
        double alpha = options.Scaling == LoraScaling.Alpha ? options.Alpha * options.Rank : options.Alpha;
        var targets = new JsonArray(LoraInjector.MinimalSuffixes(adapted, allModules).Select(s => (JsonNode)s!).ToArray());
        return new JsonObject
        {
            ["peft_type"] = "LORA",
            ["task_type"] = "SEQ_CLS",
            ["base_model_name_or_path"] = baseModelNameOrPath,
            ["r"] = options.Rank,
            ["lora_alpha"] = alpha,
            ["lora_dropout"] = options.Dropout,
            ["target_modules"] = targets,
            ["bias"] = options.Bias switch { LoraBias.All => "all", LoraBias.LoraOnly => "lora_only", _ => "none" },
            ["use_rslora"] = options.Scaling == LoraScaling.RsLora,
            ["fan_in_fan_out"] = model.Config.FanInFanOut,
            ["modules_to_save"] = savedModules.Count == 0 ? null : new JsonArray(savedModules.Select(s => (JsonNode)s!).ToArray()),
            ["layers_to_transform"] = options.LayersToTransform is { Count: > 0 } l ? new JsonArray(l.Select(i => (JsonNode)i).ToArray()) : null,
            ["layers_pattern"] = options.LayersPattern is { Count: > 0 } lp ? new JsonArray(lp.Select(p => (JsonNode)p!).ToArray()) : null,
            ["init_lora_weights"] = options.Init switch
            {
                LoraInit.Gaussian => "gaussian",
                LoraInit.Pissa => "pissa",
                LoraInit.Olora => "olora",
                LoraInit.Loftq => "loftq",
                _ => true,
            },
            ["loftq_config"] = options.Init == LoraInit.Loftq
                ? new JsonObject { ["loftq_bits"] = options.EffectiveLoftqBits, ["loftq_iter"] = options.LoftqIterations }
                : new JsonObject(),
            ["inference_mode"] = true,
            ["rank_pattern"] = Patterns(model, adapted, l => l.Rank, options.Rank),
            ["alpha_pattern"] = Patterns(model, adapted, l => PeftAlpha(l, options.Scaling == LoraScaling.RsLora), alpha),
            ["use_dora"] = adapted.Any(name => linears[name].Adapter is DoraAdapter),
            ["revision"] = null,
        };
    }

    /// <summary>
    /// PEFT's rank_pattern / alpha_pattern: the full names of adapted layers whose value differs from the adapter-wide
    /// one (layers an initial adapter brought with its own rank or alpha), each matching only itself under PEFT's rule.
    /// </summary>
    static JsonObject Patterns(SequenceClassifier model, IReadOnlyList<string> adapted, Func<LoraLinear, double> value, double global)
    {
        var linears = LoraInjector.LinearLayers(model);
        var result = new JsonObject();
        foreach (var name in adapted)
        {
            double v = value(linears[name]);
            if (Math.Abs(v - global) > 1e-9 * Math.Max(1, Math.Abs(global))) result[name] = v;
        }
        return result;
    }

    /// <summary>
    /// The key PEFT's files use for a parameter: DoRA's magnitude is stored as <c>&lt;layer&gt;.lora_magnitude_vector</c>,
    /// without the <c>.weight</c> of its module (PEFT keeps that format across its own refactor).
    /// </summary>
    static string PeftKey(string name) => name.EndsWith(MagnitudeSuffix + ".weight", StringComparison.Ordinal) ? name[..^".weight".Length] : name;

    const string MagnitudeSuffix = "." + AdapterNames.LoraMagnitudeVector;

    /// <summary>The lora_alpha PEFT needs for this layer's scaling (alpha / r, or alpha / sqrt(r) with rsLoRA).</summary>
    static double PeftAlpha(LoraLinear layer, bool rsLora) => layer.Scaling * (rsLora ? Math.Sqrt(layer.Rank) : layer.Rank);

    /// <summary>
    /// PEFT's modules_to_save: the outermost modules, holding no adapter, whose base parameters are all stored (the
    /// head, trained modules, modules the checkpoint lacked). PEFT loads stored tensors only for the modules listed.
    /// </summary>
    static IReadOnlyList<string> SavedModules(SequenceClassifier model, IReadOnlyList<string> adapted, IReadOnlySet<string> stored)
    {
        var baseNames = model.named_parameters().Select(p => p.name).Where(n => !LoraLinear.IsAdapterParameter(n)).ToList();
        return LoraInjector.Outermost(model.named_modules().Select(m => m.name)
            .Where(m => m.Length > 0 && !adapted.Any(a => ModuleNames.Overlaps(a, m)))
            .Where(m =>
            {
                var own = baseNames.Where(n => n.StartsWith(m + ".", StringComparison.Ordinal)).ToList();
                return own.Count > 0 && own.All(stored.Contains);
            }));
    }

    /// <summary>
    /// Loads an adapter folder into a model that has no adapters yet: attaches adapters with the stored ranks and
    /// scalings, copies A/B, and copies any saved module or bias tensors over the base weights.
    /// </summary>
    public static PeftAdapterInfo Load(SequenceClassifier model, string directory)
    {
        var configPath = Path.Combine(directory, ConfigFile);
        var weightsPath = Path.Combine(directory, WeightsFile);
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"Adapter folder not found: {directory}");
        if (!File.Exists(configPath)) throw new FileNotFoundException($"Adapter folder {directory} has no {ConfigFile}", configPath);
        if (!File.Exists(weightsPath))
        {
            var bin = Path.Combine(directory, "adapter_model.bin");
            throw new FileNotFoundException(File.Exists(bin)
                ? $"{bin}: adapters in .bin format are not read; save the adapter with safe_serialization=True"
                : $"Adapter folder {directory} has no {WeightsFile}", weightsPath);
        }
        return LoadFrom(model, File.ReadAllText(configPath), configPath, SafeTensorsFile.Open(weightsPath));
    }

    /// <summary>
    /// Loads an adapter whose files are already read (from an archive, or memory) into a model that has no adapters yet,
    /// as the folder overload does: <paramref name="configJson"/> is the text of adapter_config.json, named
    /// <paramref name="configName"/> in messages, and <paramref name="weights"/> is adapter_model.safetensors.
    /// </summary>
    internal static PeftAdapterInfo LoadFrom(SequenceClassifier model, string configJson, string configName, SafeTensorsFile weights)
    {
        PeftAdapterInfo? info = null;
        TorchScopes.Change(model, () => info = LoadInScope(model, configJson, configName, weights));
        return info!;
    }

    static PeftAdapterInfo LoadInScope(SequenceClassifier model, string configJson, string configPath, SafeTensorsFile file)
    {
        var weightsPath = file.Path;
        JsonObject config;
        try { config = JsonNode.Parse(configJson) as JsonObject ?? throw new CheckpointFormatException(configPath, "not a JSON object"); }
        catch (JsonException e) { throw new CheckpointFormatException(configPath, $"not valid JSON ({e.Message})"); }
        var peftType = config["peft_type"]?.GetValue<string>();
        if (peftType is not null && peftType != "LORA")
            throw new CheckpointFormatException(configPath, $"peft_type is {peftType}; only LORA adapters are supported");
        bool useDora = config["use_dora"] is JsonValue dora && dora.GetValueKind() == JsonValueKind.True;
        var residualInit = ResidualInitOf(config["init_lora_weights"], configPath);
        var (loftqBits, loftqIterations) = residualInit == LoraInit.Loftq ? LoftqConfigOf(config["loftq_config"], configPath) : (4, 1);
        int r = config["r"]?.GetValue<int>() ?? throw new CheckpointFormatException(configPath, "has no r");
        double alpha = config["lora_alpha"]?.GetValue<double>() ?? r;
        bool rslora = config["use_rslora"] is JsonValue v && v.GetValueKind() == JsonValueKind.True;
        var rankPattern = ReadPattern(config["rank_pattern"]);
        var alphaPattern = ReadPattern(config["alpha_pattern"]);

        var linears = LoraInjector.LinearLayers(model);
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        var adaptedModules = new List<string>();
        var savedTensors = new List<string>();
        var byModule = new SortedDictionary<string, (string? a, string? b)>(StringComparer.Ordinal);
        var magnitudes = new Dictionary<string, string>(StringComparer.Ordinal);

        foreach (var entry in file.Entries)
        {
            var key = Regex.Replace(ModelKey(entry.Name), @"\.(lora_[AB])\.default\.weight$", ".$1.weight");
            if (key.EndsWith(".lora_A.weight", StringComparison.Ordinal))
            {
                var module = key[..^".lora_A.weight".Length];
                byModule[module] = (entry.Name, byModule.GetValueOrDefault(module).b);
            }
            else if (key.EndsWith(".lora_B.weight", StringComparison.Ordinal))
            {
                var module = key[..^".lora_B.weight".Length];
                byModule[module] = (byModule.GetValueOrDefault(module).a, entry.Name);
            }
            else if (Regex.Replace(key, @"\.default(\.weight)?$", "") is var m && m.EndsWith(MagnitudeSuffix, StringComparison.Ordinal))
            {
                if (!useDora) throw new CheckpointFormatException(weightsPath, $"'{entry.Name}' is a DoRA magnitude, but adapter_config.json does not set use_dora");
                magnitudes[m[..^MagnitudeSuffix.Length]] = entry.Name;
            }
            else if (key.Contains("lora_embedding_"))
            {
                throw new CheckpointFormatException(weightsPath, $"'{entry.Name}' belongs to an adapter kind this library does not support");
            }
            else
            {
                if (!parameters.TryGetValue(key, out var target))
                    throw new CheckpointFormatException(weightsPath, $"'{entry.Name}' names '{key}', which this {model.Config.ModelType} model does not have");
                CopyChecked(file, entry.Name, target, weightsPath);
                savedTensors.Add(key);
            }
        }

        foreach (var (module, (a, b)) in byModule)
        {
            if (a is null || b is null)
                throw new CheckpointFormatException(weightsPath, $"module '{module}' has only one of lora_A / lora_B");
            if (!linears.TryGetValue(module, out var layer))
                throw new CheckpointFormatException(weightsPath, $"the adapter targets '{module}', which is not a linear layer of this {model.Config.ModelType} model");
            var aShape = file[a].Shape;
            var bShape = file[b].Shape;
            if (aShape.Length != 2 || bShape.Length != 2 || aShape[1] != layer.InFeatures || bShape[0] != layer.OutFeatures || aShape[0] != bShape[1])
                throw new CheckpointFormatException(weightsPath,
                    $"'{module}': lora_A [{string.Join(", ", aShape)}] / lora_B [{string.Join(", ", bShape)}] do not fit a [{layer.OutFeatures} x {layer.InFeatures}] layer");
            int rank = (int)aShape[0];
            int expectedRank = PatternValue(rankPattern, module) is double pr ? (int)pr : r;
            if (rank != expectedRank)
                throw new CheckpointFormatException(weightsPath, $"'{module}' has rank {rank} but adapter_config.json says {expectedRank}");
            double moduleAlpha = PatternValue(alphaPattern, module) ?? alpha;
            if (layer.HasAdapter && layer.Rank != rank)
                throw new CheckpointFormatException(weightsPath,
                    $"'{module}' already carries a rank-{layer.Rank} adapter (the fit's own targets), but this adapter holds rank {rank} " +
                    $"for it: set the LoRA rank (LoraOptions.Rank, --rank) to {rank}, or leave that layer out of the targets");
            if (layer.HasAdapter && (layer.Adapter is DoraAdapter) != useDora)
                throw new CheckpointFormatException(weightsPath,
                    $"'{module}' already carries a {(useDora ? "plain LoRA" : "DoRA")} adapter, but this adapter is {(useDora ? "DoRA" : "plain LoRA")}: set UseDora (--dora) to match");
            if (residualInit == LoraInit.Loftq && layer.IsQuantized)
                throw new CheckpointFormatException(configPath,
                    $"init_lora_weights is loftq, whose base is computed from the full-precision weights, but '{module}' is quantized already: " +
                    "load the base unquantized, load the adapter, then quantize the transformer layers (QuantizedBase.ApplyToLayers)");
            if (layer.HasAdapter && residualInit is not null)
                throw new CheckpointFormatException(configPath,
                    $"init_lora_weights is {residualInit} (the base weight keeps a residual), so it cannot continue the adapter '{module}' already carries");
            if (!layer.HasAdapter)
                lock (TorchRandomLock.Sync)
                    // PiSSA / OLoRA: attaching recomputes the residual the base weight kept in training, as PEFT does on load.
                    layer.AttachAdapter(rank, moduleAlpha, 0.0, rslora ? LoraScaling.RsLora : LoraScaling.AlphaOverRank,
                        residualInit ?? LoraInit.KaimingUniform, useDora, loftqBits, loftqIterations);
            layer.SetScaling(moduleAlpha, rslora ? moduleAlpha / Math.Sqrt(rank) : moduleAlpha / rank);
            CopyChecked(file, a, layer.LoraA, weightsPath);
            CopyChecked(file, b, layer.LoraB, weightsPath);
            if (useDora)
            {
                if (!magnitudes.Remove(module, out var magnitude))
                    throw new CheckpointFormatException(weightsPath, $"'{module}' has no lora_magnitude_vector, which a DoRA adapter (use_dora) needs");
                CopyChecked(file, magnitude, ((DoraAdapter)layer.Adapter!).MagnitudeVector, weightsPath);
            }
            adaptedModules.Add(module);
        }
        if (magnitudes.Count > 0)
            throw new CheckpointFormatException(weightsPath, $"'{magnitudes.First().Value}' is a DoRA magnitude for '{magnitudes.First().Key}', which has no lora_A / lora_B");
        return new PeftAdapterInfo(r, alpha, rslora, adaptedModules, savedTensors, config);
    }

    /// <summary>
    /// PiSSA, OLoRA or LoftQ when <c>init_lora_weights</c> says so (the base weight must then keep the residual, or
    /// LoftQ's quantized weight), else null.
    /// PiSSA with randomized SVD (<c>pissa_niter_K</c>) is refused: its residual cannot be recomputed exactly.
    /// </summary>
    static LoraInit? ResidualInitOf(JsonNode? node, string configPath)
    {
        if (node is not JsonValue value || value.GetValueKind() != JsonValueKind.String) return null;
        var name = value.GetValue<string>();
        if (name == "pissa") return LoraInit.Pissa;
        if (name == "olora") return LoraInit.Olora;
        if (name == "loftq") return LoraInit.Loftq;
        if (name.StartsWith("pissa_niter_", StringComparison.Ordinal))
            throw new CheckpointFormatException(configPath,
                $"init_lora_weights is {name}: its randomized SVD cannot be recomputed exactly, so the base weight's residual is unknown. " +
                "Convert the adapter to a plain LoRA adapter in PEFT (save_pretrained with path_initial_model_for_weight_conversion) and load that.");
        return null;   // gaussian, and initialisations whose effect the stored factors carry alone
    }

    /// <summary>LoftQ's bits and rounds from <c>loftq_config</c>, which PEFT requires for a LoftQ adapter.</summary>
    static (int Bits, int Iterations) LoftqConfigOf(JsonNode? node, string configPath)
    {
        if (node is not JsonObject loftq || loftq.Count == 0)
            throw new CheckpointFormatException(configPath, "init_lora_weights is loftq but loftq_config is missing or empty (PEFT requires loftq_bits and loftq_iter)");
        int bits, iterations;
        try
        {
            bits = loftq["loftq_bits"]?.GetValue<int>() ?? 4;
            iterations = loftq["loftq_iter"]?.GetValue<int>() ?? 1;
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new CheckpointFormatException(configPath, $"loftq_config holds a value that is not a whole number ({e.Message})");
        }
        if (bits is not (4 or 8)) throw new CheckpointFormatException(configPath, $"loftq_config.loftq_bits is {bits}; LoftQ quantizes to 4 (NF4) or 8 bits");
        if (iterations < 1) throw new CheckpointFormatException(configPath, $"loftq_config.loftq_iter is {iterations}; it must be at least 1");
        return (bits, iterations);
    }

    /// <summary>
    /// The model name an adapter file's key stands for: PEFT's <c>base_model.model.</c> prefix dropped, and a saved
    /// module's <c>.modules_to_save.default.</c> wrapper unwrapped (a head saved as PEFT saves it names the head's own
    /// parameter).
    /// </summary>
    internal static string ModelKey(string key)
    {
        var name = key.StartsWith(KeyPrefix, StringComparison.Ordinal) ? key[KeyPrefix.Length..] : key;
        return name.Replace(".modules_to_save.default.", ".", StringComparison.Ordinal);
    }

    static void CopyChecked(SafeTensorsFile file, string name, Tensor target, string path)
    {
        var shape = file[name].Shape;
        if (!shape.SequenceEqual(target.shape))
            throw new CheckpointFormatException(path, $"'{name}' has shape [{string.Join(", ", shape)}], the model expects [{string.Join(", ", target.shape)}]");
        using var value = file.ReadFloat32(name);
        using var _ = torch.no_grad();
        target.copy_(value);
    }

    static List<(string pattern, double value)> ReadPattern(JsonNode? node)
    {
        var list = new List<(string, double)>();
        if (node is JsonObject obj)
            foreach (var (k, v) in obj)
                if (v is JsonValue jv && jv.TryGetValue<double>(out var d)) list.Add((k, d));
        return list;
    }

    /// <summary>The value of the first key that selects <paramref name="module"/> under PEFT's rule (<see cref="ModulePattern.FirstMatch"/>).</summary>
    static double? PatternValue(List<(string pattern, double value)> patterns, string module) =>
        ModulePattern.FirstMatch(patterns.Select(p => p.pattern), module) is { } key ? patterns.First(p => p.pattern == key).value : null;
}
