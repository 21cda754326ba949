using System.Text.Json.Serialization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Cli.Reporting;
using Microsoft.ML.LoRA.Data;
using Microsoft.ML.LoRA.MLNet;

namespace Microsoft.ML.LoRA.Cli.Running;

/// <summary>
/// What evaluating a model on labelled rows found, as metrics.json holds it and the evaluate command prints it; in a
/// training run's metrics.json also what the training cost (<see cref="TrainingFigures"/>).
/// </summary>
/// <remarks>
/// <para>Every row read is accounted for: <see cref="RowsRead"/> = <see cref="RowsScored"/> + <see cref="RowsSkipped"/>.
/// A row is skipped only when it has no label (an empty label cell); <see cref="Skipped"/> says why, by reason.</para>
/// <para>The top-line figures are honest about every row with a label: <see cref="MicroAccuracy"/> and
/// <see cref="MacroAccuracy"/> count a row whose label the model was never trained on (<see cref="UnseenLabels"/>) as
/// wrong. Macro accuracy is the mean recall over the classes present in the rows, each unseen label being one more class
/// with recall 0.</para>
/// <para>ML.NET's multiclass evaluator leaves those rows out; what it computes on the rows that remain (known label) is
/// reported as it is: <see cref="LogLoss"/>, <see cref="LogLossReduction"/>, <see cref="PerClass"/>,
/// <see cref="ConfusionMatrix"/> and <see cref="KnownLabels"/> (its micro and macro accuracy). Without unseen labels,
/// <see cref="MicroAccuracy"/> and <see cref="MacroAccuracy"/> are exactly ML.NET's.</para>
/// <para>There is no report when a score is not finite: scoring stops with a
/// <see cref="Inference.NonFiniteScoreException"/> naming the first such row.</para>
/// </remarks>
/// <param name="EvaluatedOn">"data", "validation" or "training".</param>
/// <param name="RowsRead">Every row of the evaluated data.</param>
/// <param name="RowsScored">The rows with a label: the denominator of <see cref="MicroAccuracy"/>.</param>
/// <param name="RowsSkipped">The rows left out of every figure (no label).</param>
/// <param name="Skipped">Why rows were skipped, one entry per reason with rows.</param>
/// <param name="UnseenLabels">The labels the model was not trained on, with their rows (counted wrong) and what the
/// model predicted for them.</param>
/// <param name="EmptyTextRows">Rows whose text (or second text) is empty or blank; they are scored as they are.</param>
/// <param name="Rows">The same as <see cref="RowsScored"/> (kept for scripts that read it).</param>
/// <param name="MicroAccuracy">Right predictions over <see cref="RowsScored"/>.</param>
/// <param name="MacroAccuracy">Mean recall over the known classes present and the unseen labels (recall 0).</param>
/// <param name="LogLoss">ML.NET's log-loss on the rows with a known label; null without such rows.</param>
/// <param name="LogLossReduction">ML.NET's log-loss reduction on the same rows; null where undefined.</param>
/// <param name="KnownLabels">ML.NET's row count and accuracies on the same rows.</param>
/// <param name="Classes">The model's classes, in score order.</param>
/// <param name="PerClass">Per-class precision, recall and F1 from ML.NET's confusion matrix (known labels only).</param>
/// <param name="ConfusionMatrix">ML.NET's confusion matrix, [actual][predicted] (known labels only).</param>
/// <param name="Training">The training run's figures, in a run folder's metrics.json only.</param>
internal sealed record EvaluationReport(
    string EvaluatedOn,
    long RowsRead,
    long RowsScored,
    long RowsSkipped,
    IReadOnlyList<SkippedRows> Skipped,
    IReadOnlyList<UnseenLabel> UnseenLabels,
    long EmptyTextRows,
    long Rows,
    double MicroAccuracy,
    double MacroAccuracy,
    double? LogLoss,
    double? LogLossReduction,
    KnownLabelMetrics KnownLabels,
    IReadOnlyList<string> Classes,
    IReadOnlyList<ClassMetrics> PerClass,
    IReadOnlyList<IReadOnlyList<double>> ConfusionMatrix,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    TrainingFigures? Training = null)
{
    /// <summary>The reason given for rows whose label cell is empty.</summary>
    public const string NoLabel = "no label";

    /// <summary>The copy of the label as written in the data, which the pipeline's MapValueToKey leaves alone.</summary>
    internal const string RawLabelColumn = "EvaluatedRawLabel";
    internal const string ScoreColumn = "Score";
    const string PredictedLabelColumn = "PredictedLabel";

    /// <summary>True when some rows were skipped, had an unseen label or an empty text.</summary>
    [JsonIgnore]
    public bool HasRowsToReport => RowsSkipped > 0 || UnseenLabels.Count > 0 || EmptyTextRows > 0;

    /// <summary>
    /// Scores <paramref name="data"/> (text label column) with the pipeline up to its LoRA stage (where Label and
    /// PredictedLabel are still keys), counts every row, and evaluates the rows with a known label with ML.NET's
    /// multiclass evaluator. The scores are computed once (cached for the second pass).
    /// </summary>
    /// <param name="ml">The context the pipeline runs in.</param>
    /// <param name="model">The fitted pipeline.</param>
    /// <param name="data">Rows with the loader's text, (pair) and label columns.</param>
    /// <param name="evaluatedOn">What the rows are ("validation", "data"), as the report names them.</param>
    /// <param name="source">What the data is, for the error message (a file path); default "the {evaluatedOn} data".</param>
    /// <exception cref="InvalidDataException">No row has a label: there is nothing to evaluate.</exception>
    public static (EvaluationReport Report, MulticlassClassificationMetrics Metrics) Evaluate(
        MLContext ml, ITransformer model, IDataView data, string evaluatedOn, string? source = null)
    {
        source ??= $"the {evaluatedOn} data";
        var withRaw = ml.Transforms.CopyColumns(RawLabelColumn, LabeledTextColumns.Label).Fit(data).Transform(data);
        var scored = PipelineStages.TransformThroughLoraStage(model, withRaw);
        VBuffer<ReadOnlyMemory<char>> slots = default;
        scored.Schema[ScoreColumn].GetSlotNames(ref slots);
        var classes = slots.DenseValues().Select(n => n.ToString()).ToList();
        var cached = ml.Data.Cache(scored, RawLabelColumn, LabeledTextColumns.Label, ScoreColumn, PredictedLabelColumn);

        var tally = RowTally.Count(cached, classes.Count);
        if (tally.Read == 0)
            throw new InvalidDataException($"{source} has no data rows to evaluate.");
        if (tally.Scored == 0)
            throw new InvalidDataException($"{source}: none of its {tally.Read:N0} rows has a label to evaluate against.");

        var metrics = ml.MulticlassClassification.Evaluate(cached, LabeledTextColumns.Label, ScoreColumn, PredictedLabelColumn);
        var matrix = metrics.ConfusionMatrix.Counts.Select(r => (IReadOnlyList<double>)r.ToList()).ToList();
        long knownRows = (long)matrix.Sum(r => r.Sum());
        var known = new KnownLabelMetrics(knownRows, knownRows > 0 ? metrics.MicroAccuracy : null, knownRows > 0 ? metrics.MacroAccuracy : null);
        var report = new EvaluationReport(
            evaluatedOn,
            tally.Read,
            tally.Scored,
            tally.NoLabel,
            tally.NoLabel > 0 ? new[] { new SkippedRows(NoLabel, tally.NoLabel) } : Array.Empty<SkippedRows>(),
            tally.UnseenLabels(classes),
            EmptyTexts.Count(data),
            tally.Scored,
            tally.MicroAccuracy,
            tally.MacroAccuracy,
            knownRows > 0 ? Finite(metrics.LogLoss) : null,
            knownRows > 0 ? Finite(metrics.LogLossReduction) : null,
            known,
            classes,
            PerClassMetrics.From(metrics.ConfusionMatrix, classes),
            matrix);
        return (report, metrics);
    }

    static double? Finite(double value) => double.IsFinite(value) ? value : null;

    /// <summary>
    /// One pass over the scored rows (<see cref="RawLabelColumn"/> text, Label key, <see cref="ScoreColumn"/>): what
    /// each row is (no label, unseen label, known label) and whether its prediction is right.
    /// </summary>
    internal sealed class RowTally
    {
        long[] _support = Array.Empty<long>(), _correct = Array.Empty<long>();
        readonly Dictionary<string, (long Rows, long[] Predicted)> _unseen = new(StringComparer.Ordinal);

        public long Read { get; private set; }
        public long NoLabel { get; private set; }
        public long Scored => Read - NoLabel;

        public double MicroAccuracy => Scored > 0 ? (double)_correct.Sum() / Scored : 0;

        /// <summary>As ML.NET's macro accuracy (classes in order, those without rows left out), each unseen label one more class with recall 0.</summary>
        public double MacroAccuracy
        {
            get
            {
                double sum = 0;
                int count = 0;
                for (int k = 0; k < _support.Length; k++)
                {
                    if (_support[k] == 0) continue;
                    count++;
                    sum += (double)_correct[k] / _support[k];
                }
                count += _unseen.Count;
                return count > 0 ? sum / count : 0;
            }
        }

        public IReadOnlyList<UnseenLabel> UnseenLabels(IReadOnlyList<string> classes) => _unseen
            .OrderByDescending(u => u.Value.Rows).ThenBy(u => u.Key, StringComparer.Ordinal)
            .Select(u => new UnseenLabel(u.Key, u.Value.Rows,
                classes.Select((c, i) => (c, i)).ToDictionary(x => x.c, x => u.Value.Predicted[x.i])))
            .ToList();

        public static RowTally Count(IDataView scored, int classCount)
        {
            var schema = scored.Schema;
            var raw = schema[RawLabelColumn];
            var label = schema[LabeledTextColumns.Label];
            var score = schema[ScoreColumn];
            if (raw.Type is not TextDataViewType)
                throw new InvalidOperationException($"The evaluated label column has type {raw.Type}; text labels are expected.");
            if (label.Type is not KeyDataViewType)
                throw new InvalidOperationException($"The label column after the pipeline's LoRA stage has type {label.Type}; a key is expected.");

            var tally = new RowTally { _support = new long[classCount], _correct = new long[classCount] };
            using var cursor = scored.GetRowCursor(new[] { raw, label, score });
            var getRaw = cursor.GetGetter<ReadOnlyMemory<char>>(raw);
            var getKey = cursor.GetGetter<uint>(label);
            var getScore = cursor.GetGetter<VBuffer<float>>(score);
            ReadOnlyMemory<char> rawValue = default;
            uint key = 0;
            VBuffer<float> scores = default;
            var dense = new float[classCount];
            while (cursor.MoveNext())
            {
                tally.Read++;
                getKey(ref key);
                getScore(ref scores);
                scores.CopyTo(dense);
                int assigned = ArgMax(dense);
                if (key == 0 || key > classCount)
                {
                    getRaw(ref rawValue);
                    if (rawValue.Span.IsWhiteSpace()) { tally.NoLabel++; continue; }
                    var name = rawValue.ToString();
                    var entry = tally._unseen.TryGetValue(name, out var e) ? e : (0L, new long[classCount]);
                    entry.Item2[assigned]++;
                    tally._unseen[name] = (entry.Item1 + 1, entry.Item2);
                    continue;
                }
                int actual = (int)key - 1;
                tally._support[actual]++;
                if (assigned == actual) tally._correct[actual]++;
            }
            return tally;
        }

        /// <summary>The first class with the highest score, as ML.NET's evaluator picks it (scores are finite: see <see cref="Inference.NonFiniteScoreException"/>).</summary>
        static int ArgMax(float[] scores)
        {
            int best = 0;
            for (int i = 1; i < scores.Length; i++)
                if (scores[i] > scores[best]) best = i;
            return best;
        }
    }
}

/// <summary>Rows left out of every figure, and why.</summary>
internal sealed record SkippedRows(string Reason, long Rows);

/// <summary>A label the model was not trained on: its rows (all counted wrong) and the classes predicted for them.</summary>
internal sealed record UnseenLabel(string Label, long Rows, IReadOnlyDictionary<string, long> PredictedAs);

/// <summary>ML.NET's own figures on the rows with a known label (null without such rows).</summary>
internal sealed record KnownLabelMetrics(long Rows, double? MicroAccuracy, double? MacroAccuracy);
