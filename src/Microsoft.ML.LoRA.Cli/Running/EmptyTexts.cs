using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Data;

namespace Microsoft.ML.LoRA.Cli.Running;

/// <summary>Counts the rows an evaluation scored with an empty text (they are scored as they are, and reported).</summary>
internal static class EmptyTexts
{
    /// <summary>Rows whose text, or second text, is empty or blank.</summary>
    public static long Count(IDataView data)
    {
        var columns = new[] { LabeledTextColumns.Text, LabeledTextColumns.TextPair }
            .Select(n => data.Schema.GetColumnOrNull(n)).Where(c => c is { Type: TextDataViewType }).Select(c => c!.Value).ToList();
        if (columns.Count == 0) return 0;
        using var cursor = data.GetRowCursor(columns);
        var getters = columns.Select(c => cursor.GetGetter<ReadOnlyMemory<char>>(c)).ToList();
        ReadOnlyMemory<char> value = default;
        long empty = 0;
        while (cursor.MoveNext())
        {
            foreach (var get in getters)
            {
                get(ref value);
                if (value.Span.IsWhiteSpace()) { empty++; break; }
            }
        }
        return empty;
    }
}
