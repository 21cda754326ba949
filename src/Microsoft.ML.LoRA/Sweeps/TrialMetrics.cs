using Microsoft.ML.LoRA.MLNet;

namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>
/// Every metric ML.NET's evaluator gave one trial on the validation data. All are kept, whatever metric ranks the
/// sweep. <see cref="Auc"/> and <see cref="F1"/> are null for a multiclass classifier.
/// </summary>
public sealed record TrialMetrics(double Accuracy, double MacroAccuracy, double LogLoss, double? Auc, double? F1)
{
    /// <summary>The value of <paramref name="metric"/>; throws when it was not computed (AUC or F1 of a multiclass classifier).</summary>
    public double Get(SweepMetric metric) => metric switch
    {
        SweepMetric.Accuracy => Accuracy,
        SweepMetric.MacroAccuracy => MacroAccuracy,
        SweepMetric.LogLoss => LogLoss,
        SweepMetric.Auc => Auc ?? throw new InvalidOperationException("AUC exists only for a binary classifier."),
        SweepMetric.F1 => F1 ?? throw new InvalidOperationException("F1 exists only for a binary classifier."),
        _ => throw new ArgumentOutOfRangeException(nameof(metric), metric, "Unknown metric."),
    };

    /// <summary>Evaluates <paramref name="scored"/> (the validation data after the fitted pipeline) with ML.NET's evaluator for <paramref name="task"/>.</summary>
    internal static TrialMetrics Evaluate(MLContext ml, IDataView scored, ClassifierTask task, LoraTextClassifierOptions columns)
    {
        if (task == ClassifierTask.Multiclass)
        {
            var m = ml.MulticlassClassification.Evaluate(scored, columns.LabelColumnName, columns.ScoreColumnName, columns.PredictedLabelColumnName);
            return new TrialMetrics(m.MicroAccuracy, m.MacroAccuracy, m.LogLoss, null, null);
        }
        var b = ml.BinaryClassification.Evaluate(scored, columns.LabelColumnName, columns.ScoreColumnName, columns.ProbabilityColumnName, columns.PredictedLabelColumnName);
        var recalls = b.ConfusionMatrix.PerClassRecall;
        return new TrialMetrics(b.Accuracy, recalls.Count > 0 ? recalls.Average() : double.NaN, b.LogLoss, b.AreaUnderRocCurve, b.F1Score);
    }
}
