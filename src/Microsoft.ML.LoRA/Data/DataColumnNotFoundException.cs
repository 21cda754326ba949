namespace Microsoft.ML.LoRA.Data;

/// <summary>
/// A column asked for is not in a data file (or data view); the message lists the columns there are. It is an
/// <see cref="ArgumentException"/>: the column name given does not fit the data.
/// </summary>
public sealed class DataColumnNotFoundException : ArgumentException
{
    /// <summary>The column that was asked for, as it was given.</summary>
    public string Column { get; }

    /// <summary>The columns the source has.</summary>
    public IReadOnlyList<string> AvailableColumns { get; }

    /// <summary>The file (or data view description) searched.</summary>
    public string DataSource { get; }

    /// <summary>Creates the exception; <paramref name="role"/> says what the column was for ("text", "label", ...).</summary>
    public DataColumnNotFoundException(string column, string role, string source, IReadOnlyList<string> availableColumns, string? hint = null)
        : base(BuildMessage(column, role, source, availableColumns, hint))
    {
        Column = column;
        AvailableColumns = availableColumns;
        DataSource = source;
    }

    DataColumnNotFoundException(string message, string column, string source, IReadOnlyList<string> availableColumns)
        : base(message)
    {
        Column = column;
        AvailableColumns = availableColumns;
        DataSource = source;
    }

    /// <summary>No column was named and none of the usual names (<paramref name="defaults"/>) is there.</summary>
    public static DataColumnNotFoundException NoDefault(string role, string source, IReadOnlyList<string> availableColumns,
        IReadOnlyList<string> defaults, string? hint = null) =>
        new($"No {role} column was named and {source} has none of the usual names ({string.Join(", ", defaults)}). " +
            $"Available columns: {List(availableColumns)}.{(hint is null ? "" : " " + hint)}", "", source, availableColumns);

    static string List(IReadOnlyList<string> columns) =>
        columns.Count == 0 ? "(none)" : string.Join(", ", columns.Select(c => $"'{c}'"));

    static string BuildMessage(string column, string role, string source, IReadOnlyList<string> available, string? hint)
    {
        var text = $"{char.ToUpperInvariant(role[0])}{role[1..]} column '{column}' not found in {source}. Available columns: {List(available)}.";
        return hint is null ? text : text + " " + hint;
    }
}
