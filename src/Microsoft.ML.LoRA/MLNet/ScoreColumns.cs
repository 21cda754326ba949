using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.LoRA.MLNet;

/// <summary>
/// The columns a fitted classifier appends and how each is computed from one row's logits.
/// Multiclass: Score (vector of class probabilities, SlotNames = class names) and PredictedLabel (key with the
/// training label's KeyValues). Binary: Score (log-odds), Probability and PredictedLabel (Boolean). Regression: Score
/// (the one output).
/// </summary>
internal sealed class ScoreColumns
{
    public sealed record Column(string Name, DataViewType Type, DataViewSchema.Annotations Annotations);

    readonly ClassifierTask _task;
    readonly int _classes;

    public IReadOnlyList<Column> Columns { get; }

    public ScoreColumns(ClassifierTask task, LabelSet labels, string score, string predictedLabel, string probability)
    {
        _task = task;
        _classes = labels.Count;
        var kind = task == ClassifierTask.Binary ? "BinaryClassification" : "MulticlassClassification";
        if (task == ClassifierTask.Regression)
            Columns = new[] { new Column(score, NumberDataViewType.Single, Kinds("Regression", "Score")) };
        else if (task == ClassifierTask.Multiclass)
        {
            var scoreAnnotations = Merge(labels.SlotNamesAnnotation(), Kinds(kind, "Score"));
            var predicted = labels.KeyValuesAnnotation() is { } kv ? Merge(kv, Kinds(kind, "PredictedLabel")) : Kinds(kind, "PredictedLabel");
            Columns = new[]
            {
                new Column(score, new VectorDataViewType(NumberDataViewType.Single, _classes), scoreAnnotations),
                new Column(predictedLabel, new KeyDataViewType(typeof(uint), _classes), predicted),
            };
        }
        else
        {
            Columns = new[]
            {
                new Column(score, NumberDataViewType.Single, Kinds(kind, "Score")),
                new Column(probability, NumberDataViewType.Single, Kinds(kind, "Probability")),
                new Column(predictedLabel, BooleanDataViewType.Instance, Kinds(kind, "PredictedLabel")),
            };
        }
    }

    /// <summary>The input schema followed by the score columns (same-named input columns become hidden).</summary>
    public DataViewSchema AppendTo(DataViewSchema input)
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(input);
        foreach (var c in Columns) builder.AddColumn(c.Name, c.Type, c.Annotations);
        return builder.ToSchema();
    }

    /// <summary>A getter for score column <paramref name="index"/> that reads the current row's logits.</summary>
    public Delegate Getter(int index, Func<float[]> logits)
    {
        if (_task == ClassifierTask.Regression) return (ValueGetter<float>)((ref float value) => value = logits()[0]);
        if (_task == ClassifierTask.Multiclass)
        {
            if (index == 0)
                return (ValueGetter<VBuffer<float>>)((ref VBuffer<float> value) =>
                {
                    var probabilities = Softmax(logits());
                    var editor = VBufferEditor.Create(ref value, probabilities.Length);
                    probabilities.CopyTo(editor.Values);
                    value = editor.Commit();
                });
            return (ValueGetter<uint>)((ref uint value) => value = (uint)ArgMax(logits()) + 1);
        }
        return index switch
        {
            0 => (ValueGetter<float>)((ref float value) => value = LogOdds(logits())),
            1 => (ValueGetter<float>)((ref float value) => value = Sigmoid(LogOdds(logits()))),
            _ => (ValueGetter<bool>)((ref bool value) => value = LogOdds(logits()) > 0),
        };
    }

    internal static float[] Softmax(float[] logits)
    {
        float max = logits.Max();
        var e = logits.Select(l => Math.Exp(l - max)).ToArray();
        double sum = e.Sum();
        return e.Select(v => (float)(v / sum)).ToArray();
    }

    static int ArgMax(float[] values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }

    static float LogOdds(float[] logits) => logits[1] - logits[0];

    static float Sigmoid(float x) => (float)(1.0 / (1.0 + Math.Exp(-x)));

    static DataViewSchema.Annotations Kinds(string columnKind, string valueKind)
    {
        var b = new DataViewSchema.Annotations.Builder();
        var ck = columnKind.AsMemory();
        var vk = valueKind.AsMemory();
        b.Add(AnnotationNames.ScoreColumnKind, TextDataViewType.Instance, (ref ReadOnlyMemory<char> v) => v = ck);
        b.Add(AnnotationNames.ScoreValueKind, TextDataViewType.Instance, (ref ReadOnlyMemory<char> v) => v = vk);
        return b.ToAnnotations();
    }

    static DataViewSchema.Annotations Merge(DataViewSchema.Annotations a, DataViewSchema.Annotations b)
    {
        var builder = new DataViewSchema.Annotations.Builder();
        builder.Add(a, _ => true);
        builder.Add(b, _ => true);
        return builder.ToAnnotations();
    }
}
