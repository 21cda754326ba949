using Microsoft.ML.Data;
using Microsoft.ML.LoRA.MLNet;

namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>
/// Checks made before any trial trains, so a mistake fails in seconds rather than after the first trial: the pipeline
/// accepts the training and validation schemas, it contains a LoRA classifier (found by its score column), the metric
/// fits its task, and the validation data has rows.
/// </summary>
internal static class SweepPreflight
{
    public sealed record Facts(ClassifierTask Task, long TrainRows, long ValidationRows);

    public static Facts Check(Func<LoraTextClassifierOptions, IEstimator<ITransformer>> pipelineFactory, LoraTextClassifierOptions baseOptions,
        IDataView train, IDataView validation, SweepMetric metric)
    {
        var estimator = pipelineFactory(ClassifierOptionsCopy.Of(baseOptions))
            ?? throw new ArgumentException("The pipeline factory returned null; it must return the estimator (pipeline) to fit.", nameof(pipelineFactory));
        var trainOutput = OutputOf(estimator, train, "training", nameof(train));
        var validationOutput = OutputOf(estimator, validation, "validation", nameof(validation));

        if (!trainOutput.TryFind(baseOptions.ScoreColumnName, out var score))
            throw new ArgumentException(
                $"The pipeline's output has no score column '{baseOptions.ScoreColumnName}'. The factory must return a pipeline that contains " +
                "mlContext.MulticlassClassification.Trainers.LoraTextClassifier(options) (or the binary one) built from the options it is given.",
                nameof(pipelineFactory));
        var task = score.Kind == SchemaShape.Column.VectorKind.Scalar ? ClassifierTask.Binary : ClassifierTask.Multiclass;
        if (!metric.FitsTask(task))
            throw new ArgumentException(
                $"The metric {metric} needs a binary classifier (Boolean label), but this pipeline is {task.ToString().ToLowerInvariant()}. " +
                "Use Accuracy, MacroAccuracy or LogLoss.", nameof(metric));
        if (!validationOutput.TryFind(baseOptions.LabelColumnName, out _))
            throw new ArgumentException(
                $"The validation data has no label column '{baseOptions.LabelColumnName}' after the pipeline's transforms; it has: " +
                $"{string.Join(", ", validation.Schema.Where(c => !c.IsHidden).Select(c => c.Name))}.", nameof(validation));

        long trainRows = CountRows(train);
        if (trainRows == 0) throw new ArgumentException("The training data has no rows.", nameof(train));
        long validationRows = CountRows(validation);
        if (validationRows == 0) throw new ArgumentException("The validation data has no rows; the sweep ranks trials by their metric on it.", nameof(validation));
        return new Facts(task, trainRows, validationRows);
    }

    static SchemaShape OutputOf(IEstimator<ITransformer> estimator, IDataView data, string what, string parameter)
    {
        try { return estimator.GetOutputSchema(SchemaShapes.FromSchema(data.Schema)); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
        {
            throw new ArgumentException($"The {what} data does not fit the pipeline: {e.Message}", parameter, e);
        }
    }

    static long CountRows(IDataView data)
    {
        if (data.GetRowCount() is long known) return known;
        long count = 0;
        using var cursor = data.GetRowCursor(Array.Empty<DataViewSchema.Column>());
        while (cursor.MoveNext()) count++;
        return count;
    }
}
