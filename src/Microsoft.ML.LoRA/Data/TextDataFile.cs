namespace Microsoft.ML.LoRA.Data;

/// <summary>What <see cref="TextDataLoader.Describe"/> found out about a data file from its first records.</summary>
public sealed record TextDataFile
{
    /// <summary>Full path of the file.</summary>
    public required string Path { get; init; }

    /// <summary><see cref="DataFileFormat.Delimited"/> or <see cref="DataFileFormat.JsonLines"/> (never Auto).</summary>
    public required DataFileFormat Format { get; init; }

    /// <summary>True when the file is gzip-compressed (it ends in <c>.gz</c>).</summary>
    public bool Compressed { get; init; }

    /// <summary>The field separator of a delimited file; null for JSON Lines.</summary>
    public char? Separator { get; init; }

    /// <summary>Whether the first row is a header (always true for JSON Lines, whose field names are the header).</summary>
    public bool HasHeader { get; init; }

    /// <summary>Whether quoted fields are parsed as CSV quotes.</summary>
    public bool AllowQuoting { get; init; }

    /// <summary>
    /// The column names: the header's fields, the field names of the first JSON object, or "0", "1", ... for a file
    /// without a header.
    /// </summary>
    public required IReadOnlyList<string> Columns { get; init; }

    /// <summary>A short human description, e.g. "tab-separated, with header (2 columns)".</summary>
    public string Describe() => Format == DataFileFormat.JsonLines
        ? $"JSON Lines{(Compressed ? ", gzip" : "")} ({Columns.Count} fields)"
        : $"{SeparatorName(Separator ?? ',')}-separated{(Compressed ? ", gzip" : "")}, {(HasHeader ? "with" : "without")} header ({Columns.Count} columns)";

    /// <summary>The English name of a separator ("tab", "comma", ...).</summary>
    public static string SeparatorName(char separator) => separator switch
    {
        '\t' => "tab",
        ',' => "comma",
        ';' => "semicolon",
        '|' => "pipe",
        _ => $"'{separator}'",
    };
}
