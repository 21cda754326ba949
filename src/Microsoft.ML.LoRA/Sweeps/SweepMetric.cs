using Microsoft.ML.LoRA.MLNet;

namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>The validation metric a sweep ranks trials by, computed with ML.NET's evaluators on the validation data.</summary>
public enum SweepMetric
{
    /// <summary>Share of rows classified correctly (multiclass: micro-accuracy). Higher is better.</summary>
    Accuracy,
    /// <summary>Mean of the per-class recalls (multiclass: ML.NET's macro-accuracy; binary: the mean of the confusion matrix's per-class recalls). Higher is better.</summary>
    MacroAccuracy,
    /// <summary>
    /// Mean negative log-likelihood of the true class, as ML.NET's evaluators report it: natural log for multiclass,
    /// base 2 for binary (so a coin flip scores 0.693 and 1.0 respectively). Lower is better.
    /// </summary>
    LogLoss,
    /// <summary>Binary only: area under the ROC curve. Higher is better.</summary>
    Auc,
    /// <summary>Binary only: F1 score of the positive class. Higher is better.</summary>
    F1,
}

/// <summary>Direction and applicability of each <see cref="SweepMetric"/>.</summary>
public static class SweepMetricExtensions
{
    /// <summary>True for log-loss, where a smaller value is better.</summary>
    public static bool LowerIsBetter(this SweepMetric metric) => metric == SweepMetric.LogLoss;

    /// <summary>True when the metric can be computed for <paramref name="task"/> (AUC and F1 need a binary classifier).</summary>
    public static bool FitsTask(this SweepMetric metric, ClassifierTask task) =>
        task == ClassifierTask.Binary || metric is SweepMetric.Accuracy or SweepMetric.MacroAccuracy or SweepMetric.LogLoss;

    /// <summary>True when <paramref name="candidate"/> is strictly better than <paramref name="reference"/>; NaN is worse than any number.</summary>
    public static bool IsBetter(this SweepMetric metric, double candidate, double reference)
    {
        if (double.IsNaN(candidate)) return false;
        if (double.IsNaN(reference)) return true;
        return metric.LowerIsBetter() ? candidate < reference : candidate > reference;
    }

    /// <summary>The metric's column name in results.csv and the table: accuracy, macro_accuracy, log_loss, auc, f1.</summary>
    public static string ColumnName(this SweepMetric metric) => metric switch
    {
        SweepMetric.Accuracy => "accuracy",
        SweepMetric.MacroAccuracy => "macro_accuracy",
        SweepMetric.LogLoss => "log_loss",
        SweepMetric.Auc => "auc",
        SweepMetric.F1 => "f1",
        _ => throw new ArgumentOutOfRangeException(nameof(metric), metric, "Unknown metric."),
    };
}
