using System.Collections;
using System.Globalization;
using System.Text.Json;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;

namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>
/// sweep.json: the settings that, with a trial's id, decide what the trial produces — every base option except the
/// swept ones (rank, alpha, dropout, learning rate and epochs are in the id) and the ones that do not change the model
/// (progress, cancellation, threads, Hub access), plus the row counts of the training and validation data. A run on a
/// folder whose sweep.json holds other settings is refused, so a resumed sweep never mixes trials of different setups.
/// The search space, strategy, metric and seed are recorded for reference but may change between runs: finished trials
/// are reused wherever the new plan contains their id.
/// </summary>
internal static class SweepManifest
{
    const int FormatVersion = 1;

    static readonly HashSet<string> Ignored = new(StringComparer.Ordinal)
    {
        nameof(LoraTextClassifierOptions.Progress), nameof(LoraTextClassifierOptions.CancellationToken),
        nameof(LoraTextClassifierOptions.Threads), nameof(LoraTextClassifierOptions.Hub), nameof(LoraTextClassifierOptions.Lora),
        nameof(LoraTextClassifierOptions.LearningRate), nameof(LoraTextClassifierOptions.Epochs),
        "Lora." + nameof(LoraOptions.Rank), "Lora." + nameof(LoraOptions.Alpha), "Lora." + nameof(LoraOptions.Dropout),
    };

    public sealed class Document
    {
        public int FormatVersion { get; set; }
        public DateTimeOffset CreatedAt { get; set; }
        public string? Strategy { get; set; }
        public string? Metric { get; set; }
        public int Seed { get; set; }
        public string? SearchSpace { get; set; }
        public SortedDictionary<string, string> Settings { get; set; } = new(StringComparer.Ordinal);
    }

    /// <summary>The settings that must match for trials to be reused.</summary>
    public static SortedDictionary<string, string> Settings(LoraTextClassifierOptions baseOptions, long trainRows, long validationRows)
    {
        var settings = new SortedDictionary<string, string>(StringComparer.Ordinal);
        AddProperties(settings, "", baseOptions);
        AddProperties(settings, "Lora.", baseOptions.Lora);
        settings[nameof(LoraTextClassifierOptions.ValidationSet)] = baseOptions.ValidationSet is null ? "none" : "given";
        settings["TrainRows"] = trainRows.ToString(CultureInfo.InvariantCulture);
        settings["ValidationRows"] = validationRows.ToString(CultureInfo.InvariantCulture);
        return settings;
    }

    /// <summary>Writes sweep.json when the folder has none; otherwise throws when its settings differ from <paramref name="settings"/>.</summary>
    public static void CreateOrCheck(SweepFolder folder, SortedDictionary<string, string> settings, SweepOptions options)
    {
        if (File.Exists(folder.Manifest))
        {
            Document? existing;
            try { existing = JsonSerializer.Deserialize<Document>(File.ReadAllText(folder.Manifest), SweepJson.Indented); }
            catch (JsonException e) { throw new InvalidDataException($"{folder.Manifest} is not a sweep manifest ({e.Message}).", e); }
            if (existing is null || existing.FormatVersion != FormatVersion)
                throw new InvalidDataException($"{folder.Manifest} has an unknown format version; use another output folder.");
            var differences = settings.Keys.Union(existing.Settings.Keys).Order(StringComparer.Ordinal)
                .Where(k => !existing.Settings.TryGetValue(k, out var a) || !settings.TryGetValue(k, out var b) || a != b)
                .Select(k => $"{k}: {existing.Settings.GetValueOrDefault(k, "(absent)")} -> {settings.GetValueOrDefault(k, "(absent)")}")
                .ToList();
            if (differences.Count > 0)
                throw new InvalidOperationException(
                    $"The folder {folder.Root} holds a sweep with other settings, so its trials cannot be reused: {string.Join("; ", differences)}. " +
                    "Use another output folder, or delete this one to start over.");
            return;
        }
        var document = new Document
        {
            FormatVersion = FormatVersion,
            CreatedAt = DateTimeOffset.UtcNow,
            Strategy = options.Strategy.ToString(),
            Metric = options.Metric.ToString(),
            Seed = options.Seed,
            SearchSpace = Describe(options.SearchSpace),
            Settings = settings,
        };
        AtomicFile.WriteAllText(folder.Manifest, JsonSerializer.Serialize(document, SweepJson.Indented));
    }

    static string Describe(LoraSearchSpace space)
    {
        static string List<T>(IList<T>? values) => values is null ? "base" : "[" + string.Join(", ", values.Select(v => Format(v))) + "]";
        return $"ranks {List(space.Ranks)}, alphas {List(space.Alphas)}, dropouts {List(space.Dropouts)}, learning rates {List(space.LearningRates)}, " +
               $"epochs {List(space.Epochs)}, query {space.LoraQuery}, key {space.LoraKey}, value {space.LoraValue}, " +
               $"projection {space.LoraProjection}, mlp {space.LoraMlp}, head {space.LoraHead}";
    }

    static void AddProperties(SortedDictionary<string, string> settings, string prefix, object source)
    {
        foreach (var p in source.GetType().GetProperties(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance))
        {
            if (!p.CanRead || p.GetIndexParameters().Length > 0 || p.IsDefined(typeof(SettingAliasAttribute), inherit: true)) continue;
            var name = prefix + p.Name;
            if (Ignored.Contains(name)) continue;
            var type = Nullable.GetUnderlyingType(p.PropertyType) ?? p.PropertyType;
            bool simple = type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal);
            bool list = typeof(IEnumerable).IsAssignableFrom(type) && type != typeof(string) && type.IsGenericType
                && (type.GetGenericArguments()[0].IsPrimitive || type.GetGenericArguments()[0] == typeof(string));
            if (simple || list) settings[name] = Format(p.GetValue(source));
        }
    }

    static string Format(object? value) => value switch
    {
        null => "null",
        string s => s,
        double d => TrialConfiguration.Format(d),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        IEnumerable e => "[" + string.Join(", ", e.Cast<object?>().Select(Format)) + "]",
        _ => value.ToString() ?? "",
    };
}
