using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.LoRA.Data;

/// <summary>
/// Reads labelled text files into a streaming ML.NET <see cref="IDataView"/> with the columns of
/// <see cref="LabeledTextColumns"/> (all text): TSV, CSV, semicolon- and pipe-separated files with or without a
/// header, quoted CSV fields holding separators or line breaks, and JSON Lines; any of them gzipped (<c>.gz</c>).
/// </summary>
/// <remarks>
/// <para>Delimited files are read by ML.NET's <see cref="TextLoader"/>, JSON Lines by a lazily enumerated sequence:
/// nothing is read until the data view is, and rows are never all held in memory.</para>
/// <para>Layout detection (when <see cref="TextDataFileOptions"/> leaves it open) looks at the first records only:
/// the separator is the candidate (tab, comma, semicolon, pipe) that cuts them into the same number of fields; the
/// first row is a header when it holds a column name asked for, when a column is numeric below it but not in it, or
/// when its fields all look like names and none recurs below it. A file without a header has columns named by their
/// 0-based index: "0", "1", ....</para>
/// <para>TextLoader drops the spaces that start a field (" said kiss" reads "said kiss"); everything else, quotes
/// in unquoted fields included, is read as written. Rows that start with "//" or "#", which TextLoader would skip
/// as comments, are read like any other (see <see cref="CommentSafeLineReader"/>).</para>
/// </remarks>
public static class TextDataLoader
{
    /// <summary>Describes a file's layout (format, separator, header, column names) from its first records.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is empty or not what its format says.</exception>
    public static TextDataFile Describe(string path, TextDataFileOptions? options = null)
    {
        options ??= new TextDataFileOptions();
        return DataFileSniffer.Describe(path, options, Requested(options));
    }

    /// <summary>Loads the text (and pair and label) columns of a file as a streaming data view.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="DataColumnNotFoundException">A column is not in the file; the message lists the columns.</exception>
    /// <exception cref="InvalidDataException">The file is empty or not what its format says.</exception>
    public static LabeledTextData Load(MLContext mlContext, string path, TextDataFileOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        options ??= new TextDataFileOptions();
        var file = DataFileSniffer.Describe(path, options, Requested(options));

        int text = options.TextColumn is { } t
            ? ColumnResolver.Resolve(file, t, "text")
            : ColumnResolver.ResolveDefault(file, TextDataFileOptions.DefaultTextColumns, "text");
        int? pair = options.TextPairColumn is { } p ? ColumnResolver.Resolve(file, p, "text pair") : null;
        int? label = !options.ReadLabel ? null
            : options.LabelColumn is { } l ? ColumnResolver.Resolve(file, l, "label")
            : ColumnResolver.ResolveDefault(file, TextDataFileOptions.DefaultLabelColumns, "label");
        var chosen = new[] { (int?)text, pair, label }.Where(i => i is not null).Select(i => i!.Value).ToList();
        if (chosen.Distinct().Count() != chosen.Count)
            throw new ArgumentException($"The text, text pair and label columns must differ; '{file.Columns[chosen.GroupBy(i => i).First(g => g.Count() > 1).Key]}' is chosen twice.");

        var data = file.Format == DataFileFormat.JsonLines
            ? LoadJsonLines(mlContext, file, text, pair, label)
            : LoadDelimited(mlContext, file, text, pair, label);
        return new LabeledTextData(data, file, file.Columns[text],
            pair is { } pi ? file.Columns[pi] : null, label is { } li ? file.Columns[li] : null);
    }

    static IEnumerable<string?> Requested(TextDataFileOptions o) => new[] { o.TextColumn, o.TextPairColumn, o.LabelColumn };

    static IDataView LoadDelimited(MLContext mlContext, TextDataFile file, int text, int? pair, int? label)
    {
        var columns = new List<TextLoader.Column> { new(LabeledTextColumns.Text, DataKind.String, text) };
        if (pair is { } p) columns.Add(new(LabeledTextColumns.TextPair, DataKind.String, p));
        if (label is { } l) columns.Add(new(LabeledTextColumns.Label, DataKind.String, l));
        var loader = mlContext.Data.CreateTextLoader(new TextLoader.Options
        {
            Separators = new[] { file.Separator ?? '\t' },
            HasHeader = file.HasHeader,
            AllowQuoting = file.AllowQuoting,
            ReadMultilines = file.AllowQuoting,
            TrimWhitespace = false,
            Columns = columns.ToArray(),
        });
        return loader.Load(new DataFileSource(file.Path, file.Separator ?? '\t', file.AllowQuoting));
    }

    static IDataView LoadJsonLines(MLContext mlContext, TextDataFile file, int text, int? pair, int? label)
    {
        var rows = new JsonLinesRows(file.Path, file.Columns[text],
            pair is { } p ? file.Columns[p] : null, label is { } l ? file.Columns[l] : null);
        var schema = SchemaDefinition.Create(typeof(JsonLinesRow));
        if (pair is null) schema.RemoveAll(c => c.ColumnName == LabeledTextColumns.TextPair);
        if (label is null) schema.RemoveAll(c => c.ColumnName == LabeledTextColumns.Label);
        return mlContext.Data.LoadFromEnumerable(rows, schema);
    }
}
