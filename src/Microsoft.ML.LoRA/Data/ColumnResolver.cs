using System.Globalization;

namespace Microsoft.ML.LoRA.Data;

/// <summary>Finds a column a user named (by name, case-insensitively when unambiguous, or by 0-based index).</summary>
internal static class ColumnResolver
{
    /// <summary>The index of <paramref name="selector"/> among the file's columns; throws naming the columns there are.</summary>
    public static int Resolve(TextDataFile file, string selector, string role)
    {
        var columns = file.Columns;
        for (int i = 0; i < columns.Count; i++)
            if (string.Equals(columns[i], selector, StringComparison.Ordinal)) return i;
        var folded = Enumerable.Range(0, columns.Count)
            .Where(i => string.Equals(columns[i], selector, StringComparison.OrdinalIgnoreCase)).ToList();
        if (folded.Count == 1) return folded[0];
        if (int.TryParse(selector, NumberStyles.None, CultureInfo.InvariantCulture, out int index) && index < columns.Count)
            return index;
        throw new DataColumnNotFoundException(selector, role, file.Path, columns, Hint(file));
    }

    /// <summary>The first of <paramref name="defaults"/> the file has, or throws asking for the column to be named.</summary>
    public static int ResolveDefault(TextDataFile file, IReadOnlyList<string> defaults, string role)
    {
        foreach (var name in defaults)
        {
            var match = Enumerable.Range(0, file.Columns.Count)
                .FirstOrDefault(i => string.Equals(file.Columns[i], name, StringComparison.OrdinalIgnoreCase), -1);
            if (match >= 0) return match;
        }
        throw DataColumnNotFoundException.NoDefault(role, file.Path, file.Columns, defaults,
            $"Name the {role} column.{(Hint(file) is { } hint ? " " + hint : "")}");
    }

    static string? Hint(TextDataFile file) => file.Format == DataFileFormat.Delimited
        ? file.HasHeader
            ? $"Columns can also be given by 0-based index (0-{file.Columns.Count - 1})."
            : $"The file has no header row, so its columns are named by 0-based index (0-{file.Columns.Count - 1})."
        : null;
}
