using System.Text.Json;
using System.Text.Json.Nodes;

namespace Microsoft.ML.LoRA.Checkpoints;

/// <summary>
/// Typed reads from a config.json object, each failure a <see cref="CheckpointFormatException"/> that names the file
/// and the field. A family's <see cref="IConfigDialect"/> reads its own field names through it.
/// </summary>
public sealed class ConfigJson(JsonObject raw, string source)
{
    /// <summary>The config object as read.</summary>
    public JsonObject Raw { get; } = raw;

    /// <summary>Where the config was read from (for error messages).</summary>
    public string Source { get; } = source;

    /// <summary>A JSON number as double, whether parsed from text or built in code from an int, long or double.</summary>
    static double? Number(JsonNode node)
    {
        if (node is not JsonValue v || v.GetValueKind() != JsonValueKind.Number) return null;
        if (v.TryGetValue<double>(out var d)) return d;
        if (v.TryGetValue<long>(out var l)) return l;
        if (v.TryGetValue<int>(out var i)) return i;
        if (v.TryGetValue<float>(out var f)) return f;
        return null;
    }

    /// <summary>The string field <paramref name="key"/>, or null when absent or not a string.</summary>
    public string? String(string key) =>
        Raw[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    /// <summary>The integer field <paramref name="key"/>; throws when it is absent or not an integer.</summary>
    public int Int(string key) =>
        IntOrNull(key) ?? throw new CheckpointFormatException(Source, $"is missing the integer field '{key}'");

    /// <summary>The integer field <paramref name="key"/>, or null when absent; throws when it is not an integer.</summary>
    public int? IntOrNull(string key)
    {
        var node = Raw[key];
        if (node is null) return null;
        if (Number(node) is double d && d == Math.Floor(d) && d >= int.MinValue && d <= int.MaxValue)
            return (int)d;
        throw new CheckpointFormatException(Source, $"field '{key}' is not an integer ({node.ToJsonString()})");
    }

    /// <summary>
    /// The integer field <paramref name="key"/>, or the first of a list of integers (Llama 3's <c>eos_token_id</c> lists
    /// every token that ends a turn; the first is its end of text), or null when absent or an empty list.
    /// </summary>
    public int? FirstIntOrNull(string key)
    {
        if (Raw[key] is not JsonArray list) return IntOrNull(key);
        if (list.Count == 0) return null;
        if (list[0] is JsonNode first && Number(first) is double d && d == Math.Floor(d) && d >= int.MinValue && d <= int.MaxValue)
            return (int)d;
        throw new CheckpointFormatException(Source, $"field '{key}' is not an integer or a list of integers ({list.ToJsonString()})");
    }

    /// <summary>The number field <paramref name="key"/>, or null when absent; throws when it is not a number.</summary>
    public double? DoubleOrNull(string key)
    {
        var node = Raw[key];
        if (node is null) return null;
        if (Number(node) is double d) return d;
        throw new CheckpointFormatException(Source, $"field '{key}' is not a number ({node.ToJsonString()})");
    }

    /// <summary>The true/false field <paramref name="key"/>, or null when absent (or null); throws when it is anything else.</summary>
    public bool? BoolOrNull(string key) => Raw[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.True => true,
        JsonValue v when v.GetValueKind() == JsonValueKind.False => false,
        var other => throw new CheckpointFormatException(Source, $"field '{key}' is not true or false ({other.ToJsonString()})"),
    };
}
