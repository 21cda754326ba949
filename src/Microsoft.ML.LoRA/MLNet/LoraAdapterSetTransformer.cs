using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Inference;

namespace Microsoft.ML.LoRA.MLNet;

/// <summary>
/// Scores each row with the adapter its adapter column names, from a <see cref="LoraAdapterSet"/> (one base model,
/// many adapters; <c>"__base__"</c> for the base model alone). Appends Score (class probabilities, SlotNames = the
/// label names) and PredictedLabel (a key) as the multiclass <see cref="LoraTextClassificationTransformer"/> does, so
/// <c>mlContext.MulticlassClassification.Evaluate</c> works on its output. Rows are scored a window at a time, grouped
/// by adapter within the window, and come back in their order. Create it with
/// <c>mlContext.Transforms.ScoreWithLoraAdapters(set, ...)</c>.
/// </summary>
/// <remarks>
/// The transformer does not own the set: dispose the set when the pipeline is no longer used (scoring afterwards
/// throws <see cref="ObjectDisposedException"/>). It cannot be saved with <c>mlContext.Model.Save</c>: the adapters
/// live in their folders; build the stage again from them where the pipeline runs.
/// </remarks>
public sealed class LoraAdapterSetTransformer : ITransformer, IRowScorer
{
    internal LoraAdapterSetTransformer(LoraAdapterSet adapters, string adapterColumnName, string textColumnName, string? textPairColumnName,
        LabelSet labels, string scoreColumnName, string predictedLabelColumnName)
    {
        Adapters = adapters;
        AdapterColumnName = adapterColumnName;
        TextColumnName = textColumnName;
        TextPairColumnName = textPairColumnName;
        Labels = labels;
        Scores = new ScoreColumns(ClassifierTask.Multiclass, labels, scoreColumnName, predictedLabelColumnName, "Probability");
    }

    /// <summary>The set whose adapters score the rows.</summary>
    public LoraAdapterSet Adapters { get; }

    /// <summary>The text column naming each row's adapter.</summary>
    public string AdapterColumnName { get; }

    /// <summary>The text column scored.</summary>
    public string TextColumnName { get; }

    /// <summary>The second text of sentence pairs, or null.</summary>
    public string? TextPairColumnName { get; }

    /// <summary>The classes, in class-index order (the KeyValues of PredictedLabel and the SlotNames of Score).</summary>
    public LabelSet Labels { get; }

    /// <summary>The columns appended and how each is computed from a row's logits.</summary>
    internal ScoreColumns Scores { get; }

    public bool IsRowToRowMapper => true;

    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ColumnsOf(inputSchema);
        return Scores.AppendTo(inputSchema);
    }

    public IDataView Transform(IDataView input) => new ScoredDataView(this, input);

    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new ScoringRowMapper(this, inputSchema);

    void ICanSaveModel.Save(ModelSaveContext ctx) => throw new NotSupportedException(
        "A pipeline containing LoraAdapterSetTransformer cannot be saved with mlContext.Model.Save: its adapters are read from " +
        "their PEFT folders into a LoraAdapterSet. Keep the base model and the adapter folders, and build the stage again with " +
        "mlContext.Transforms.ScoreWithLoraAdapters where the pipeline runs.");

    ScoreColumns IRowScorer.Scores => Scores;

    int IRowScorer.ScoringWindow => Adapters.BatchSize * 4;

    IReadOnlyList<DataViewSchema.Column> IRowScorer.InputColumnsOf(DataViewSchema schema) => ColumnsOf(schema);

    /// <summary>The text, adapter and pair columns, in this order; throws naming a missing or non-text one.</summary>
    IReadOnlyList<DataViewSchema.Column> ColumnsOf(DataViewSchema schema)
    {
        var columns = new List<DataViewSchema.Column>
        {
            LoraTextClassificationTransformer.RequireText(schema, TextColumnName),
            RequireAdapterColumn(schema),
        };
        if (TextPairColumnName is { } pair) columns.Add(LoraTextClassificationTransformer.RequireText(schema, pair));
        return columns;
    }

    Func<ScoringInput> IRowScorer.InputReader(DataViewRow row)
    {
        var columns = ColumnsOf(row.Schema);
        var text = row.GetGetter<ReadOnlyMemory<char>>(columns[0]);
        var adapter = row.GetGetter<ReadOnlyMemory<char>>(columns[1]);
        var pair = columns.Count > 2 ? row.GetGetter<ReadOnlyMemory<char>>(columns[2]) : null;
        return () =>
        {
            ReadOnlyMemory<char> t = default, a = default, p = default;
            text(ref t);
            adapter(ref a);
            pair?.Invoke(ref p);
            return new ScoringInput(t.ToString(), pair is null ? null : p.ToString(), a.ToString());
        };
    }

    float[][] IRowScorer.Logits(IReadOnlyList<ScoringInput> rows)
    {
        var names = new string[rows.Count];
        for (int i = 0; i < names.Length; i++)
            names[i] = rows[i].Adapter is { Length: > 0 } name ? name
                : throw new InvalidOperationException($"A row's '{AdapterColumnName}' is empty; name an adapter of the set, or \"{LoraAdapterSet.BaseModelName}\" for the base model.");
        return Adapters.LogitsPerRow(names, rows.Select(r => r.Text).ToList(), TextPairColumnName is null ? null : rows.Select(r => r.Pair).ToList());
    }

    DataViewSchema.Column RequireAdapterColumn(DataViewSchema schema)
    {
        var column = schema.GetColumnOrNull(AdapterColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(schema), $"Adapter column '{AdapterColumnName}' is not in the data; it has: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => c.Name))}.");
        if (column.Type is not TextDataViewType)
            throw new ArgumentOutOfRangeException(nameof(schema), $"Adapter column '{AdapterColumnName}' has type {column.Type}; it must be text naming an adapter of the set.");
        return column;
    }
}
