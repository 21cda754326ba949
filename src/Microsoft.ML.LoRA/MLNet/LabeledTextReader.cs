using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Tokenization;
using Microsoft.ML.LoRA.Training;

namespace Microsoft.ML.LoRA.MLNet;

/// <summary>
/// Reads (text, label) rows from an IDataView and tokenizes them. Multiclass labels are keys (key k = class k-1;
/// the missing key 0 is skipped); a validation set may instead carry the raw label values, which are mapped through
/// the training label's key values. Binary labels are Boolean. Regression labels are Single: a missing value (NaN)
/// skips the row, an infinite one is an error.
/// </summary>
internal sealed class LabeledTextReader
{
    readonly ITextEncoder _encoder;
    readonly LoraTextClassifierOptions _options;
    readonly ClassifierTask _task;
    readonly LabelSet _labels;

    public LabeledTextReader(ITextEncoder encoder, LoraTextClassifierOptions options, ClassifierTask task, LabelSet labels)
    {
        _encoder = encoder;
        _options = options;
        _task = task;
        _labels = labels;
    }

    /// <summary>The examples of <paramref name="data"/>, and how many rows were skipped for lack of a usable label.</summary>
    public (List<LabeledExample> Examples, int Skipped) Read(IDataView data, string what)
    {
        var schema = data.Schema;
        var text = LoraTextClassificationTransformer.RequireText(schema, _options.TextColumnName);
        var pair = _options.TextPairColumnName is { } p ? LoraTextClassificationTransformer.RequireText(schema, p) : (DataViewSchema.Column?)null;
        var label = schema.GetColumnOrNull(_options.LabelColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(data), $"Label column '{_options.LabelColumnName}' is not in the {what} data; it has: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => c.Name))}.");
        var active = new List<DataViewSchema.Column> { text, label };
        if (pair is { } pc) active.Add(pc);

        var examples = new List<LabeledExample>();
        int skipped = 0;
        using var cursor = data.GetRowCursor(active);
        var readText = cursor.GetGetter<ReadOnlyMemory<char>>(text);
        var readPair = pair is { } pcol ? cursor.GetGetter<ReadOnlyMemory<char>>(pcol) : null;
        var readLabel = _task == ClassifierTask.Regression ? null : LabelGetter(cursor, label, what);
        var readTarget = _task == ClassifierTask.Regression ? TargetGetter(cursor, label, what) : null;
        ReadOnlyMemory<char> t = default, q = default;
        long row = 0;
        while (cursor.MoveNext())
        {
            row++;
            int index = 0;
            float target = 0;
            if (readTarget is not null)
            {
                target = readTarget();
                if (float.IsNaN(target)) { skipped++; continue; }
                if (!float.IsFinite(target))
                    throw new ArgumentOutOfRangeException(nameof(data), $"Row {row} of the {what} data has label {target} in '{label.Name}'; a regression label must be a finite number.");
            }
            else
            {
                index = readLabel!();
                if (index < 0) { skipped++; continue; }
            }
            readText(ref t);
            readPair?.Invoke(ref q);
            examples.Add(new LabeledExample(_encoder.Encode(t.ToString(), readPair is null ? null : q.ToString()), index) { Target = target });
        }
        return (examples, skipped);
    }

    /// <summary>
    /// A function returning the current row's regression label (NaN when missing). Training labels are Single (the
    /// estimator checks); a validation set may also carry other numbers or the raw text, parsed as invariant numbers.
    /// </summary>
    static Func<float> TargetGetter(DataViewRowCursor cursor, DataViewSchema.Column label, string what)
    {
        Func<float> Make<T>(Func<T, float> convert)
        {
            var getter = cursor.GetGetter<T>(label);
            T value = default!;
            return () => { getter(ref value); return convert(value); };
        }
        if (label.Type == NumberDataViewType.Single) return Make<float>(v => v);
        if (label.Type == NumberDataViewType.Double) return Make<double>(v => (float)v);
        if (label.Type == NumberDataViewType.Int32) return Make<int>(v => v);
        if (label.Type == NumberDataViewType.Int64) return Make<long>(v => v);
        if (label.Type == TextDataViewType.Instance)
        {
            long row = 0;
            return Make<ReadOnlyMemory<char>>(v =>
            {
                row++;
                var text = v.Span.Trim();
                if (text.IsEmpty) return float.NaN;
                return float.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var number)
                    ? number
                    : throw new ArgumentOutOfRangeException(nameof(label), $"Row {row} of the {what} data has label '{text.ToString()}' in '{label.Name}', which is not a number.");
            });
        }
        throw new ArgumentOutOfRangeException(nameof(label), $"Label column '{label.Name}' in the {what} data has type {label.Type}; a regression label must be Single (float). " +
            $"Add mlContext.Transforms.Conversion.ConvertType(\"{label.Name}\", outputKind: DataKind.Single) before the trainer.");
    }

    /// <summary>A function returning the current row's class index, or -1 when it has no usable label.</summary>
    Func<int> LabelGetter(DataViewRowCursor cursor, DataViewSchema.Column label, string what)
    {
        if (_task == ClassifierTask.Binary)
        {
            if (label.Type != BooleanDataViewType.Instance)
                throw new ArgumentOutOfRangeException(nameof(label), $"Label column '{label.Name}' in the {what} data has type {label.Type}; a binary label must be Boolean.");
            var getter = cursor.GetGetter<bool>(label);
            bool value = false;
            return () => { getter(ref value); return value ? 1 : 0; };
        }
        if (label.Type is KeyDataViewType key)
        {
            var incoming = LabelSet.FromKeyColumn(label);
            var getter = cursor.GetGetter<uint>(label);
            uint value = 0;
            // Same key values as training: use the key. Otherwise map by value name.
            var map = incoming.Names.SequenceEqual(_labels.Names)
                ? null
                : incoming.Names.Select(n => _labels.IndexOf(n)).ToArray();
            return () =>
            {
                getter(ref value);
                if (value == 0 || value > key.Count) return -1;
                return map is null ? (int)value - 1 : map[value - 1];
            };
        }
        var read = RawValueReader(cursor, label, what);
        return () => _labels.IndexOf(read());
    }

    static Func<string> RawValueReader(DataViewRowCursor cursor, DataViewSchema.Column label, string what)
    {
        Func<string> Make<T>(Func<T, string> format)
        {
            var getter = cursor.GetGetter<T>(label);
            T value = default!;
            return () => { getter(ref value); return format(value); };
        }
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        if (label.Type == TextDataViewType.Instance) return Make<ReadOnlyMemory<char>>(v => v.ToString());
        if (label.Type == NumberDataViewType.Int32) return Make<int>(v => v.ToString(inv));
        if (label.Type == NumberDataViewType.Int64) return Make<long>(v => v.ToString(inv));
        if (label.Type == NumberDataViewType.UInt32) return Make<uint>(v => v.ToString(inv));
        if (label.Type == NumberDataViewType.Single) return Make<float>(v => v.ToString("R", inv));
        if (label.Type == NumberDataViewType.Double) return Make<double>(v => v.ToString("R", inv));
        if (label.Type == BooleanDataViewType.Instance) return Make<bool>(v => v.ToString());
        throw new ArgumentOutOfRangeException(nameof(label), $"Label column '{label.Name}' in the {what} data has type {label.Type}, which cannot be matched to the training labels.");
    }
}
