using System.Text.Json;
using System.Text.Json.Serialization;

namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>JSON settings of the sweep's files: camelCase, enums as strings, NaN and infinities allowed, nulls omitted.</summary>
internal static class SweepJson
{
    public static readonly JsonSerializerOptions Line = Create(indented: false);
    public static readonly JsonSerializerOptions Indented = Create(indented: true);

    static JsonSerializerOptions Create(bool indented) => new()
    {
        WriteIndented = indented,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };
}
