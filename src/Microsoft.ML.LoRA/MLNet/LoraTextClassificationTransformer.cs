using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Inference;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tokenization;
using Microsoft.ML.LoRA.Training;

namespace Microsoft.ML.LoRA.MLNet;

/// <summary>
/// A fitted LoRA text classifier as an ML.NET transformer. <see cref="Transform"/> is lazy and batched: it appends
/// Score and PredictedLabel (plus Probability for binary) and computes them a window of rows at a time when a cursor
/// reads them. Save it with <c>mlContext.Model.SaveWithLora</c> (ML.NET's own <c>Save</c> cannot store it; see
/// docs/persistence.md); export the adapter for Python with <see cref="SaveAdapter"/>.
/// <para>
/// One fitted model may serve many threads and PredictionEngines at once. Each engine made from it holds a reference to
/// its native model, which ML.NET gives back by disposing the transformer when the engine is disposed; the model is
/// freed when the pipeline and every engine created from it have been disposed, so disposing one engine never breaks
/// the others. After that, using it throws <see cref="ObjectDisposedException"/>. (An engine created with
/// <c>ownsTransformer: false</c> never gives its reference back; the native memory is then freed by the garbage
/// collector once the model is unreachable.) See docs/reliability.md.
/// </para>
/// </summary>
public sealed class LoraTextClassificationTransformer : ITransformer, IDisposable, IRowScorer
{
    internal LoraTextClassificationTransformer(SequenceClassifier model, ITextEncoder encoder, LoraModelInfo info)
    {
        _shared = new SharedModel(model);
        Encoder = encoder;
        Info = info;
        Scorer = new ClassifierScorer(model, encoder, info.InferenceBatchSize);
        Scores = new ScoreColumns(info.Task, info.Labels, info.ScoreColumnName, info.PredictedLabelColumnName, info.ProbabilityColumnName);
        model.eval();
        model.UseForScoring(info.Precision);
    }

    /// <summary>Columns, labels, LoRA settings, base checkpoint and tokenizer of this model.</summary>
    public LoraModelInfo Info { get; }

    /// <summary>Per-epoch figures of the training run (null when loaded without history).</summary>
    public TrainingHistory? TrainingHistory => Info.History;

    /// <summary>The class names, in class-index order.</summary>
    public IReadOnlyList<string> LabelNames => Info.Labels.Names;

    readonly SharedModel _shared;

    /// <summary>The fitted model; throws <see cref="ObjectDisposedException"/> once the transformer was disposed.</summary>
    internal SequenceClassifier Model => _shared.Model;
    internal ITextEncoder Encoder { get; }
    internal ClassifierScorer Scorer { get; }
    internal ScoreColumns Scores { get; }
    internal bool HasPairColumn => Info.TextPairColumnName is not null;
    /// <summary>Rows read ahead and scored together (sorted by length into model batches).</summary>
    internal int ScoringWindow => Info.InferenceBatchSize * 4;

    public bool IsRowToRowMapper => true;

    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        TextColumnsOf(inputSchema);
        return Scores.AppendTo(inputSchema);
    }

    public IDataView Transform(IDataView input)
    {
        ThrowIfDisposed();
        return new ScoredDataView(this, input);
    }

    /// <summary>
    /// The row mapper a PredictionEngine scores through. The engine holds a reference to the model from here on and
    /// gives it back when it is disposed (ML.NET disposes the transformer it was given).
    /// </summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        var mapper = new ScoringRowMapper(this, inputSchema);
        _shared.AddReference();
        return mapper;
    }

    void ICanSaveModel.Save(ModelSaveContext ctx) => throw new NotSupportedException(
        "A pipeline containing LoraTextClassificationTransformer cannot be saved with mlContext.Model.Save: ML.NET keeps " +
        "the save API for its own components. Use mlContext.Model.SaveWithLora(model, inputSchema, path) instead " +
        "(and mlContext.Model.LoadWithLora(path, out schema) to load it).");

    /// <summary>
    /// Writes the adapter (and the trained head) as a PEFT folder: adapter_config.json + adapter_model.safetensors.
    /// Only LoRA fits have one; for other <see cref="LoraModelInfo.FineTuning"/> methods this throws
    /// <see cref="NotSupportedException"/> (write a merged checkpoint instead).
    /// </summary>
    public void SaveAdapter(string directory)
    {
        if (!Info.FineTuning.IsLora) throw Persistence.LoraModelFile.NotAnAdapter("This model", Info.FineTuning);
        PeftAdapter.Save(Model, directory, Info.Lora, Info.BaseModel.Source);
    }

    /// <summary>Class probabilities for one text (or pair), without going through an IDataView.</summary>
    public float[] PredictProbabilities(string? text, string? pair = null) =>
        ScoreColumns.Softmax(Logits(new[] { text }, HasPairColumn || pair is not null ? new[] { pair } : null)[0]);

    /// <summary>
    /// Logits of texts (and pairs); the model stays alive while they are computed, from any number of threads.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The transformer was disposed (with every engine made from it).</exception>
    /// <exception cref="Inference.NonFiniteScoreException">The model produced a NaN or infinite score.</exception>
    internal float[][] Logits(IReadOnlyList<string?> texts, IReadOnlyList<string?>? pairs) =>
        _shared.Use(_ => Scorer.Logits(texts, pairs));

    ScoreColumns IRowScorer.Scores => Scores;

    int IRowScorer.ScoringWindow => ScoringWindow;

    IReadOnlyList<DataViewSchema.Column> IRowScorer.InputColumnsOf(DataViewSchema schema) => TextColumnsOf(schema);

    Func<ScoringInput> IRowScorer.InputReader(DataViewRow row) => TextReader(row);

    float[][] IRowScorer.Logits(IReadOnlyList<ScoringInput> rows) =>
        Logits(rows.Select(r => r.Text).ToList(), HasPairColumn ? rows.Select(r => r.Pair).ToList() : null);

    void ThrowIfDisposed()
    {
        if (_shared.IsReleased) _ = _shared.Model;   // throws ObjectDisposedException with the explanation
    }

    /// <summary>The text (and pair) columns in <paramref name="schema"/>; throws naming a missing or mistyped column.</summary>
    internal IReadOnlyList<DataViewSchema.Column> TextColumnsOf(DataViewSchema schema)
    {
        var columns = new List<DataViewSchema.Column> { RequireText(schema, Info.TextColumnName) };
        if (Info.TextPairColumnName is { } pair) columns.Add(RequireText(schema, pair));
        return columns;
    }

    /// <summary>A function reading the current row's text (and pair) from <paramref name="row"/>.</summary>
    internal Func<ScoringInput> TextReader(DataViewRow row)
    {
        var columns = TextColumnsOf(row.Schema);
        var text = row.GetGetter<ReadOnlyMemory<char>>(columns[0]);
        var pair = columns.Count > 1 ? row.GetGetter<ReadOnlyMemory<char>>(columns[1]) : null;
        return () =>
        {
            ReadOnlyMemory<char> t = default, p = default;
            text(ref t);
            pair?.Invoke(ref p);
            return new ScoringInput(t.ToString(), pair is null ? null : p.ToString());
        };
    }

    internal static DataViewSchema.Column RequireText(DataViewSchema schema, string name)
    {
        var column = schema.GetColumnOrNull(name)
            ?? throw new ArgumentOutOfRangeException(nameof(schema), $"Text column '{name}' is not in the data; it has: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => c.Name))}.");
        if (column.Type is not TextDataViewType)
            throw new ArgumentOutOfRangeException(nameof(schema), $"Text column '{name}' has type {column.Type}; it must be text (string).");
        return column;
    }

    /// <summary>
    /// Gives back this holder's reference to the native model (a PredictionEngine's, or the pipeline's own); the model is
    /// freed when the last one is given back. Calling it more often than references were taken does nothing.
    /// </summary>
    public void Dispose() => _shared.Release();
}
