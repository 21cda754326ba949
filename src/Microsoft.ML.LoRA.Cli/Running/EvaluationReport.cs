using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Cli.Reporting;
using Microsoft.ML.LoRA.Data;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Persistence;

namespace Microsoft.ML.LoRA.Cli.Running;

/// <summary>
/// What evaluating a model on labelled rows found, as metrics.json holds it and the evaluate command prints it:
/// ML.NET's multiclass metrics, per-class precision/recall/F1 and the confusion matrix; in a training run's
/// metrics.json also what the training cost (<see cref="TrainingFigures"/>).
/// </summary>
internal sealed record EvaluationReport(
    string EvaluatedOn,
    long Rows,
    double MicroAccuracy,
    double MacroAccuracy,
    double LogLoss,
    double LogLossReduction,
    IReadOnlyList<string> Classes,
    IReadOnlyList<ClassMetrics> PerClass,
    IReadOnlyList<IReadOnlyList<double>> ConfusionMatrix,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    TrainingFigures? Training = null)
{
    /// <summary>
    /// Scores <paramref name="data"/> with the pipeline up to its LoRA stage (where Label and PredictedLabel are still
    /// keys) and evaluates it with ML.NET's multiclass evaluator.
    /// </summary>
    public static (EvaluationReport Report, MulticlassClassificationMetrics Metrics) Evaluate(MLContext ml, ITransformer model, IDataView data, string evaluatedOn)
    {
        var scored = PipelineStages.TransformThroughLoraStage(model, data);
        var metrics = ml.MulticlassClassification.Evaluate(scored, LabeledTextColumns.Label, "Score", "PredictedLabel");
        VBuffer<ReadOnlyMemory<char>> slots = default;
        scored.Schema["Score"].GetSlotNames(ref slots);
        var classes = slots.DenseValues().Select(n => n.ToString()).ToList();
        var matrix = metrics.ConfusionMatrix.Counts.Select(r => (IReadOnlyList<double>)r.ToList()).ToList();
        var report = new EvaluationReport(evaluatedOn, (long)matrix.Sum(r => r.Sum()), metrics.MicroAccuracy, metrics.MacroAccuracy,
            metrics.LogLoss, metrics.LogLossReduction, classes, PerClassMetrics.From(metrics.ConfusionMatrix, classes), matrix);
        return (report, metrics);
    }
}
