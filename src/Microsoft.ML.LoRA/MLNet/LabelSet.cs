using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.LoRA.MLNet;

/// <summary>
/// The classes a classifier predicts: how many, their names, and the type of the key values the training label
/// column carried (so PredictedLabel gets the same KeyValues annotation and MapKeyToValue works after loading).
/// </summary>
public sealed class LabelSet
{
    /// <summary>Element type of the key values: "text", a numeric type name, "boolean", or "none" when the key had no values.</summary>
    public string ValueKind { get; }

    /// <summary>Class names in key order (key value k+1 is class k); numbers as invariant strings; "0".."K-1" when the key had no values.</summary>
    public IReadOnlyList<string> Names { get; }

    public int Count => Names.Count;

    public LabelSet(IReadOnlyList<string> names, string valueKind)
    {
        if (valueKind == RegressionKind ? names.Count != 1 : names.Count < 2)
            throw new ArgumentException(valueKind == RegressionKind
                ? $"A regression model has one output; the label set has {names.Count}."
                : $"A classifier needs at least 2 classes; the label has {names.Count}.");
        Names = names;
        ValueKind = valueKind;
    }

    /// <summary>The <see cref="ValueKind"/> of a regression model's one output.</summary>
    public const string RegressionKind = "regression";

    /// <summary>
    /// A regression model's one output, named as Hugging Face names the only label of a num_labels = 1 model
    /// (<c>LABEL_0</c>), so a merged checkpoint's config.json reads as Hugging Face writes one.
    /// </summary>
    public static LabelSet Regression() => new(new[] { "LABEL_0" }, RegressionKind);

    /// <summary>The two classes of a Boolean label (class 0 = false, class 1 = true).</summary>
    public static LabelSet Binary() => new(new[] { "False", "True" }, "boolean");

    /// <summary>Reads the class count from a key-typed label column and the names from its KeyValues annotation.</summary>
    public static LabelSet FromKeyColumn(DataViewSchema.Column column)
    {
        if (column.Type is not KeyDataViewType key)
            throw new ArgumentException($"Label column '{column.Name}' has type {column.Type}; a multiclass label must be a key. " +
                $"Add mlContext.Transforms.Conversion.MapValueToKey(\"{column.Name}\") before the trainer.");
        if (key.Count < 2 || key.Count > 100_000)
            throw new ArgumentException($"Label column '{column.Name}' has {key.Count} classes; between 2 and 100000 are supported.");
        int count = (int)key.Count;
        var kv = column.Annotations.Schema.GetColumnOrNull(AnnotationNames.KeyValues);
        if (kv?.Type is VectorDataViewType { ItemType: var item } && KindOf(item) is string kind)
        {
            var names = ReadNames(column.Annotations, item, count);
            if (names.Count == count) return new LabelSet(names, kind);
        }
        return new LabelSet(Enumerable.Range(0, count).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray(), "none");
    }

    /// <summary>The KeyValues annotation that reproduces the training label's key values (null when it had none).</summary>
    public DataViewSchema.Annotations? KeyValuesAnnotation()
    {
        var builder = new DataViewSchema.Annotations.Builder();
        switch (ValueKind)
        {
            case "text": AddValues(builder, TextDataViewType.Instance, Names.Select(n => n.AsMemory())); break;
            case "int32": AddValues(builder, NumberDataViewType.Int32, Names.Select(n => int.Parse(n, CultureInfo.InvariantCulture))); break;
            case "uint32": AddValues(builder, NumberDataViewType.UInt32, Names.Select(n => uint.Parse(n, CultureInfo.InvariantCulture))); break;
            case "int64": AddValues(builder, NumberDataViewType.Int64, Names.Select(n => long.Parse(n, CultureInfo.InvariantCulture))); break;
            case "single": AddValues(builder, NumberDataViewType.Single, Names.Select(n => float.Parse(n, CultureInfo.InvariantCulture))); break;
            case "double": AddValues(builder, NumberDataViewType.Double, Names.Select(n => double.Parse(n, CultureInfo.InvariantCulture))); break;
            case "boolean": AddValues(builder, BooleanDataViewType.Instance, Names.Select(n => bool.Parse(n))); break;
            default: return null;
        }
        return builder.ToAnnotations();
    }

    /// <summary>The SlotNames annotation for a per-class score vector.</summary>
    public DataViewSchema.Annotations SlotNamesAnnotation()
    {
        var builder = new DataViewSchema.Annotations.Builder();
        var values = new VBuffer<ReadOnlyMemory<char>>(Count, Names.Select(n => n.AsMemory()).ToArray());
        builder.Add(AnnotationNames.SlotNames, new VectorDataViewType(TextDataViewType.Instance, Count),
            (ref VBuffer<ReadOnlyMemory<char>> v) => values.CopyTo(ref v));
        return builder.ToAnnotations();
    }

    /// <summary>The class index of a raw label value (as written in the data), or -1 when the training label had no such class.</summary>
    public int IndexOf(string value)
    {
        for (int i = 0; i < Names.Count; i++) if (Names[i] == value) return i;
        return -1;
    }

    static void AddValues<T>(DataViewSchema.Annotations.Builder builder, PrimitiveDataViewType type, IEnumerable<T> values)
    {
        var array = values.ToArray();
        var buffer = new VBuffer<T>(array.Length, array);
        builder.Add(AnnotationNames.KeyValues, new VectorDataViewType(type, array.Length), (ref VBuffer<T> v) => buffer.CopyTo(ref v));
    }

    static string? KindOf(DataViewType t) =>
        t == TextDataViewType.Instance ? "text"
        : t == NumberDataViewType.Int32 ? "int32"
        : t == NumberDataViewType.UInt32 ? "uint32"
        : t == NumberDataViewType.Int64 ? "int64"
        : t == NumberDataViewType.Single ? "single"
        : t == NumberDataViewType.Double ? "double"
        : t == BooleanDataViewType.Instance ? "boolean"
        : null;

    static IReadOnlyList<string> ReadNames(DataViewSchema.Annotations annotations, DataViewType item, int count)
    {
        IReadOnlyList<string> Read<T>(Func<T, string> format)
        {
            VBuffer<T> buffer = default;
            annotations.GetValue(AnnotationNames.KeyValues, ref buffer);
            return buffer.DenseValues().Select(format).ToArray();
        }
        return KindOf(item) switch
        {
            "text" => Read<ReadOnlyMemory<char>>(v => v.ToString()),
            "int32" => Read<int>(v => v.ToString(CultureInfo.InvariantCulture)),
            "uint32" => Read<uint>(v => v.ToString(CultureInfo.InvariantCulture)),
            "int64" => Read<long>(v => v.ToString(CultureInfo.InvariantCulture)),
            "single" => Read<float>(v => v.ToString("R", CultureInfo.InvariantCulture)),
            "double" => Read<double>(v => v.ToString("R", CultureInfo.InvariantCulture)),
            "boolean" => Read<bool>(v => v.ToString()),
            _ => Array.Empty<string>(),
        };
    }
}
