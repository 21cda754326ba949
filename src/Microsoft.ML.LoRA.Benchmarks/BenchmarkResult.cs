using System.Text.Json;
using System.Text.Json.Nodes;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>
/// One run's figures, printed as one JSON line. The keys the PyTorch anchor prints keep its names
/// (<c>train_samples_per_s</c>, <c>infer_samples_per_s</c>, <c>peak_rss_mib</c>, ...); ours are added beside them.
/// </summary>
public sealed class BenchmarkResult
{
    readonly JsonObject _fields = new();

    /// <summary>Sets a field (numbers of 1 or more are rounded to 2 decimals as the anchor rounds them; NaN is null).</summary>
    public BenchmarkResult Set(string key, object? value)
    {
        _fields[key] = value switch
        {
            null => null,
            double d when !double.IsFinite(d) => null,
            double d => JsonValue.Create(Math.Round(d, Math.Abs(d) >= 1 ? 2 : 6)),
            float f => JsonValue.Create(Math.Round(f, 2)),
            int i => JsonValue.Create(i),
            long l => JsonValue.Create(l),
            bool b => JsonValue.Create(b),
            string s => JsonValue.Create(s),
            _ => JsonValue.Create(value.ToString()),
        };
        return this;
    }

    /// <summary>A numeric field, or NaN when it is missing.</summary>
    public double Number(string key) =>
        _fields[key] is JsonValue v && v.TryGetValue<double>(out var d) ? d
        : _fields[key] is JsonValue w && w.TryGetValue<long>(out var l) ? l : double.NaN;

    /// <summary>A text field, or null.</summary>
    public string? Text(string key) => _fields[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    /// <summary>The names of the fields, in the order they were set.</summary>
    public IEnumerable<string> Keys => _fields.Select(kv => kv.Key);

    /// <summary>A result read back from its one-line JSON form (a child process's output).</summary>
    public static BenchmarkResult FromJson(string line)
    {
        var result = new BenchmarkResult();
        foreach (var (key, value) in JsonNode.Parse(line)!.AsObject()) result._fields[key] = value?.DeepClone();
        return result;
    }

    /// <summary>The one-line JSON form.</summary>
    public string ToJson() => _fields.ToJsonString(new JsonSerializerOptions { WriteIndented = false });

    /// <inheritdoc />
    public override string ToString() => ToJson();
}
