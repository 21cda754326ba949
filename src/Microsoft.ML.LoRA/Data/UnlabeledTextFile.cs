using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.LoRA.Data;

/// <summary>
/// Reads the texts of a file for work that needs no label (domain adaptation): the text column of a TSV/CSV/JSON Lines
/// file (read by <see cref="TextDataLoader"/>, with the same column options; any label column is ignored), or every
/// line of a plain text file (a <c>.txt</c> file, or any file in which no separator was found). A one-column file starts with a header only when told
/// (<see cref="TextDataFileOptions.HasHeader"/>) or when its first line is the text column's name ("text", ...).
/// Texts are streamed in file order.
/// </summary>
public static class UnlabeledTextFile
{
    /// <summary>The texts of <paramref name="path"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="DataColumnNotFoundException">The text column is not in the file; the message lists the columns.</exception>
    /// <exception cref="InvalidDataException">The file is empty or not what its format says.</exception>
    public static IEnumerable<string> Read(string path, TextDataFileOptions? options = null)
    {
        var o = options?.Clone() ?? new TextDataFileOptions();
        o.ReadLabel = false;
        o.LabelColumn = null;
        if (o.TextPairColumn is not null)
            throw new ArgumentException("A text pair column is not read here: each text is one example.", nameof(options));
        var file = TextDataLoader.Describe(path, o);
        bool plainText = Path.GetExtension(DataFileStreams.NameWithoutGzip(path)).Equals(".txt", StringComparison.OrdinalIgnoreCase)
            && o.Separator is null && o.Format != DataFileFormat.JsonLines;
        if (file.Format == DataFileFormat.Delimited && (plainText || file.Columns.Count == 1)) return PlainLines(file, o);
        var data = TextDataLoader.Load(new MLContext(), path, o).Data;
        return Column(data);
    }

    static IEnumerable<string> PlainLines(TextDataFile file, TextDataFileOptions options)
    {
        string? first;
        using (var peek = DataFileStreams.OpenText(file.Path)) first = peek.ReadLine();
        var name = first?.Trim() ?? "";
        bool named = options.TextColumn is { } t && t != "0";
        bool header = options.HasHeader ?? (named
            ? string.Equals(name, options.TextColumn, StringComparison.OrdinalIgnoreCase)
            : TextDataFileOptions.DefaultTextColumns.Any(c => string.Equals(name, c, StringComparison.OrdinalIgnoreCase)));
        if (named && !(header && string.Equals(name, options.TextColumn, StringComparison.OrdinalIgnoreCase)))
            throw new DataColumnNotFoundException(options.TextColumn!, "text", file.Path, header ? new[] { name } : new[] { "0" },
                "The file has one column and no separator: each line is a text (column 0).");
        return Lines(file.Path, skipFirst: header);
    }

    static IEnumerable<string> Lines(string path, bool skipFirst)
    {
        using var reader = DataFileStreams.OpenText(path);
        if (skipFirst) reader.ReadLine();
        while (reader.ReadLine() is { } line)
            if (line.Length > 0) yield return line;
    }

    static IEnumerable<string> Column(IDataView data)
    {
        var column = data.Schema[LabeledTextColumns.Text];
        using var cursor = data.GetRowCursor(new[] { column });
        var getter = cursor.GetGetter<ReadOnlyMemory<char>>(column);
        ReadOnlyMemory<char> value = default;
        while (cursor.MoveNext())
        {
            getter(ref value);
            yield return value.ToString();
        }
    }
}
