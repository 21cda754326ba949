using System.IO.Compression;
using System.Text;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>Reads the IMDb CSV (columns label, rating, id, text; RFC 4180 quoting), plain or gzipped.</summary>
public static class ImdbReviews
{
    /// <summary>Every (label, text) row of <paramref name="path"/>; <paramref name="labelColumn"/> "rating" reads the 1-10 rating instead of the 0/1 label.</summary>
    public static List<(int Label, string Text)> Read(string path, string labelColumn = "label")
    {
        using var file = File.OpenRead(path);
        using Stream stream = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : file;
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var header = ReadRecord(reader) ?? throw new InvalidDataException($"{path} is empty");
        int labelAt = header.IndexOf(labelColumn), textAt = header.IndexOf("text");
        if (labelAt < 0 || textAt < 0) throw new InvalidDataException($"{path} has no '{labelColumn}' and 'text' columns");
        var rows = new List<(int, string)>();
        while (ReadRecord(reader) is { } record)
        {
            if (record.Count <= Math.Max(labelAt, textAt)) continue;
            rows.Add((int.Parse(record[labelAt]), record[textAt]));
        }
        return rows;
    }

    static List<string>? ReadRecord(TextReader reader)
    {
        int c = reader.Peek();
        if (c < 0) return null;
        var fields = new List<string>();
        var field = new StringBuilder();
        bool quoted = false;
        while ((c = reader.Read()) >= 0)
        {
            char ch = (char)c;
            if (quoted)
            {
                if (ch != '"') field.Append(ch);
                else if (reader.Peek() == '"') field.Append((char)reader.Read());
                else quoted = false;
            }
            else if (ch == '"') quoted = true;
            else if (ch == ',') { fields.Add(field.ToString()); field.Clear(); }
            else if (ch == '\n') break;
            else if (ch != '\r') field.Append(ch);
        }
        fields.Add(field.ToString());
        return fields;
    }
}
