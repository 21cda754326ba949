using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Microsoft.ML.LoRA.Lora;

/// <summary>The kinds of fine-tuning: which parts of the pre-trained model change.</summary>
public enum FineTuningMethod
{
    /// <summary>Low-rank adapters on the chosen linear layers, plus the head; the base weights stay frozen.</summary>
    Lora,
    /// <summary>Only the head (and modules the checkpoint lacks) trains; the whole base stays frozen.</summary>
    HeadOnly,
    /// <summary>The head and the last N transformer layers train in full; the rest stays frozen.</summary>
    LastLayers,
    /// <summary>Every weight of the model trains.</summary>
    Full,
}

/// <summary>
/// Which part of the model a fit trains: <see cref="Lora"/> (default), <see cref="HeadOnly"/>,
/// <see cref="LastLayers"/>(n) or <see cref="Full"/>. In every method the head trains, and so do modules the base
/// checkpoint lacks (a masked-LM checkpoint's pooler) unless <see cref="LoraOptions.ModulesToSave"/> says otherwise.
/// Its text form is the CLI's <c>--method</c> value: <c>lora</c>, <c>head</c>, <c>last-layers:N</c>, <c>full</c>.
/// </summary>
[JsonConverter(typeof(FineTuningJsonConverter))]
public sealed record FineTuning
{
    FineTuning(FineTuningMethod method, int layers)
    {
        Method = method;
        Layers = layers;
    }

    /// <summary>The kind of fine-tuning.</summary>
    public FineTuningMethod Method { get; }

    /// <summary>For <see cref="FineTuningMethod.LastLayers"/>: how many of the last transformer layers train; else 0.</summary>
    public int Layers { get; }

    /// <summary>LoRA adapters (see <see cref="LoraOptions"/>) and the head; the base stays frozen.</summary>
    public static FineTuning Lora { get; } = new(FineTuningMethod.Lora, 0);

    /// <summary>Only the head (and modules the checkpoint lacks).</summary>
    public static FineTuning HeadOnly { get; } = new(FineTuningMethod.HeadOnly, 0);

    /// <summary>Every weight of the model.</summary>
    public static FineTuning Full { get; } = new(FineTuningMethod.Full, 0);

    /// <summary>The head and the last <paramref name="layers"/> transformer layers (with what follows them, e.g. GPT-2's final norm).</summary>
    public static FineTuning LastLayers(int layers) => layers >= 1
        ? new(FineTuningMethod.LastLayers, layers)
        : throw new ArgumentOutOfRangeException(nameof(layers), $"LastLayers needs at least 1 layer (got {layers}).");

    /// <summary>True for LoRA, the only method whose result is a PEFT adapter.</summary>
    public bool IsLora => Method == FineTuningMethod.Lora;

    /// <summary>The text form: <c>lora</c>, <c>head</c>, <c>last-layers:N</c> or <c>full</c>.</summary>
    public override string ToString() => Method switch
    {
        FineTuningMethod.Lora => "lora",
        FineTuningMethod.HeadOnly => "head",
        FineTuningMethod.LastLayers => $"last-layers:{Layers.ToString(CultureInfo.InvariantCulture)}",
        _ => "full",
    };

    /// <summary>Reads the text form (case-insensitive); throws <see cref="FormatException"/> naming the accepted forms.</summary>
    public static FineTuning Parse(string text)
    {
        var t = (text ?? "").Trim().ToLowerInvariant();
        switch (t)
        {
            case "lora": return Lora;
            case "head" or "head-only": return HeadOnly;
            case "full": return Full;
        }
        const string prefix = "last-layers:";
        if (t.StartsWith(prefix, StringComparison.Ordinal)
            && int.TryParse(t[prefix.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= 1)
            return LastLayers(n);
        throw new FormatException($"'{text}' is not a fine-tuning method; use lora, head, last-layers:N (N >= 1) or full.");
    }
}

/// <summary>Writes a <see cref="FineTuning"/> as its text form, so options.json and lora-model.json read naturally.</summary>
public sealed class FineTuningJsonConverter : JsonConverter<FineTuning>
{
    public override FineTuning Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.String) throw new JsonException("a fine-tuning method is a string such as \"lora\" or \"last-layers:2\"");
        try { return FineTuning.Parse(reader.GetString()!); }
        catch (FormatException e) { throw new JsonException(e.Message, e); }
    }

    public override void Write(Utf8JsonWriter writer, FineTuning value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.ToString());
}
