using System.Collections;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Training;

namespace Microsoft.ML.LoRA.Data;

/// <summary>
/// Splits a data set into training and validation rows so that every label keeps its share (the rows are chosen by
/// <see cref="StratifiedSelection"/>). The same data, fraction and seed always give the same split. Both halves stream from the source in its order; only the labels are read up front.
/// </summary>
public static class StratifiedSplit
{
    /// <summary>Splits <paramref name="data"/> by its <paramref name="labelColumn"/>.</summary>
    /// <param name="data">The rows to split.</param>
    /// <param name="validationFraction">Share of each label's rows that goes to validation, in (0, 1).</param>
    /// <param name="seed">Seed of the shuffle that picks the validation rows.</param>
    /// <param name="labelColumn">The label column: text, a key, a number or a boolean.</param>
    /// <exception cref="ArgumentOutOfRangeException">The fraction is not in (0, 1).</exception>
    /// <exception cref="DataColumnNotFoundException">The data has no such column.</exception>
    public static TrainValidationData Split(IDataView data, double validationFraction, int seed, string labelColumn = LabeledTextColumns.Label)
    {
        ArgumentNullException.ThrowIfNull(data);
        var column = data.Schema.GetColumnOrNull(labelColumn)
            ?? throw new DataColumnNotFoundException(labelColumn, "label", "the data", data.Schema.Select(c => c.Name).ToList());

        var labels = ReadLabels(data, column);
        var validation = new BitArray(StratifiedSelection.ValidationRows(labels, validationFraction, seed, StringComparer.Ordinal));
        var train = new BitArray(validation).Not();
        return new TrainValidationData(new RowSubsetDataView(data, train), new RowSubsetDataView(data, validation));
    }

    /// <summary>Every row's label, as text, in row order.</summary>
    static List<string> ReadLabels(IDataView data, DataViewSchema.Column column)
    {
        var labels = new List<string>();
        using var cursor = data.GetRowCursor(new[] { column });
        var get = LabelGetter(cursor, column);
        while (cursor.MoveNext())
        {
            if (cursor.Position != labels.Count)
                throw new InvalidOperationException("the data view's cursor skipped rows; it cannot be split by position");
            labels.Add(get());
        }
        return labels;
    }

    static Func<string> LabelGetter(DataViewRowCursor cursor, DataViewSchema.Column column)
    {
        var type = column.Type;
        if (type is TextDataViewType)
        {
            var getter = cursor.GetGetter<ReadOnlyMemory<char>>(column);
            ReadOnlyMemory<char> value = default;
            return () => { getter(ref value); return value.ToString(); };
        }
        if (type is KeyDataViewType) return Getter<uint>(cursor, column);
        if (type.RawType == typeof(bool)) return Getter<bool>(cursor, column);
        if (type.RawType == typeof(float)) return Getter<float>(cursor, column);
        if (type.RawType == typeof(double)) return Getter<double>(cursor, column);
        if (type.RawType == typeof(int)) return Getter<int>(cursor, column);
        if (type.RawType == typeof(long)) return Getter<long>(cursor, column);
        throw new ArgumentException($"The label column '{column.Name}' has type {type}; a text, key, number or boolean column is needed.");
    }

    static Func<string> Getter<T>(DataViewRowCursor cursor, DataViewSchema.Column column)
    {
        var getter = cursor.GetGetter<T>(column);
        T value = default!;
        return () => { getter(ref value); return Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? ""; };
    }
}
