using System.Collections;
using System.Globalization;
using System.Text.Json;

namespace Microsoft.ML.LoRA.Data;

/// <summary>One row read from a JSON Lines file; the fields not selected stay null and are not in the data view.</summary>
internal sealed class JsonLinesRow
{
    public string? Text { get; set; }
    public string? TextPair { get; set; }
    public string? Label { get; set; }
}

/// <summary>
/// The rows of a JSON Lines file, read lazily line by line each time the sequence is enumerated (so a data view over
/// it streams). String fields are read as they are; numbers as written ("1", "0.5"); booleans as "true" / "false".
/// Blank lines are skipped; a line that is not an object, or lacks a selected field, stops the read with its number.
/// </summary>
internal sealed class JsonLinesRows : IEnumerable<JsonLinesRow>
{
    readonly string _path;
    readonly string _text;
    readonly string? _pair, _label;

    public JsonLinesRows(string path, string textField, string? pairField, string? labelField)
    {
        _path = path;
        _text = textField;
        _pair = pairField;
        _label = labelField;
    }

    public IEnumerator<JsonLinesRow> GetEnumerator()
    {
        using var reader = DataFileStreams.OpenText(_path);
        int lineNumber = 0;
        string? line;
        while ((line = reader.ReadLine()) is not null)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            yield return Parse(line, lineNumber);
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    JsonLinesRow Parse(string line, int lineNumber)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(line); }
        catch (JsonException e) { throw new InvalidDataException($"{_path}: line {lineNumber} is not valid JSON ({e.Message})"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{_path}: line {lineNumber} is not a JSON object");
            return new JsonLinesRow
            {
                Text = Field(root, _text, lineNumber),
                TextPair = _pair is null ? null : Field(root, _pair, lineNumber),
                Label = _label is null ? null : Field(root, _label, lineNumber),
            };
        }
    }

    string Field(JsonElement root, string name, int lineNumber)
    {
        if (!root.TryGetProperty(name, out var value))
            throw new InvalidDataException($"{_path}: line {lineNumber} has no '{name}' field");
        return value.ValueKind switch
        {
            JsonValueKind.String => value.GetString()!,
            JsonValueKind.Number => value.GetRawText(),
            JsonValueKind.True => "true",
            JsonValueKind.False => "false",
            _ => throw new InvalidDataException(
                $"{_path}: line {lineNumber}: field '{name}' is {value.ValueKind.ToString().ToLowerInvariant()}; only string, number and bool fields are read"),
        };
    }
}
