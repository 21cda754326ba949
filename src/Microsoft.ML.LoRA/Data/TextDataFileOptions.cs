namespace Microsoft.ML.LoRA.Data;

/// <summary>
/// Which columns of a labelled text file to read and how the file is laid out. Columns are named as in the header
/// row (or the JSON field names); a 0-based index ("0", "1", ...) works for every delimited file, and is the only way
/// to name the columns of a file without a header. Layout settings left null are detected from the start of the file.
/// </summary>
public sealed class TextDataFileOptions
{
    /// <summary>Names that <see cref="TextColumn"/> falls back to, in order, when it is null.</summary>
    public static readonly IReadOnlyList<string> DefaultTextColumns =
        new[] { "text", "sentence", "content", "review", "message", "document", "question", "description" };

    /// <summary>Names that <see cref="LabelColumn"/> falls back to, in order, when it is null.</summary>
    public static readonly IReadOnlyList<string> DefaultLabelColumns =
        new[] { "label", "labels", "class", "category", "target", "sentiment", "y" };

    /// <summary>The text column. Null: the first of <see cref="DefaultTextColumns"/> the header has (case-insensitive).</summary>
    public string? TextColumn { get; set; }

    /// <summary>The second text of a pair. Null: no pair column.</summary>
    public string? TextPairColumn { get; set; }

    /// <summary>The label column. Null: the first of <see cref="DefaultLabelColumns"/> the header has (case-insensitive).</summary>
    public string? LabelColumn { get; set; }

    /// <summary>False to read no label at all (data to predict on). Default true.</summary>
    public bool ReadLabel { get; set; } = true;

    /// <summary>The file's format. Default <see cref="DataFileFormat.Auto"/> (by file extension).</summary>
    public DataFileFormat Format { get; set; } = DataFileFormat.Auto;

    /// <summary>Whether the first row of a delimited file is a header. Null: detected (see <see cref="TextDataLoader"/>).</summary>
    public bool? HasHeader { get; set; }

    /// <summary>The field separator of a delimited file. Null: detected among tab, comma, semicolon and pipe.</summary>
    public char? Separator { get; set; }

    /// <summary>
    /// Whether a field that starts with a double quote is a quoted CSV field (which may hold separators, doubled quotes
    /// and line breaks). Null: true unless the separator is a tab (TSV files such as SMS Spam Collection hold stray
    /// quotes in plain text).
    /// </summary>
    public bool? AllowQuoting { get; set; }

    /// <summary>A copy of these options.</summary>
    public TextDataFileOptions Clone() => (TextDataFileOptions)MemberwiseClone();
}
