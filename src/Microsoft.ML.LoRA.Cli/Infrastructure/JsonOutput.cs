using System.Text.Json;
using System.Text.Json.Serialization;

namespace Microsoft.ML.LoRA.Cli.Infrastructure;

/// <summary>How commands write JSON to stdout: camelCase names, one document, then a newline.</summary>
internal static class JsonOutput
{
    public static readonly JsonSerializerOptions Indented = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public static readonly JsonSerializerOptions Compact = new(Indented) { WriteIndented = false };

    /// <summary>Writes <paramref name="value"/> as one JSON document followed by a newline.</summary>
    public static void Write<T>(TextWriter writer, T value, bool indented = true)
    {
        writer.WriteLine(JsonSerializer.Serialize(value, indented ? Indented : Compact));
        writer.Flush();
    }
}
