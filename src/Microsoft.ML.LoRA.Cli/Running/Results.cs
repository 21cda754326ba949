using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Cli.Reporting;
using Spectre.Console;

namespace Microsoft.ML.LoRA.Cli.Running;

/// <summary>The tables train and evaluate print: metrics, per-class precision/recall/F1 and the confusion matrix.</summary>
internal static class Results
{
    public static void Print(IAnsiConsole console, EvaluationReport report, MulticlassClassificationMetrics metrics, string title)
    {
        console.Write(MetricsTable.Multiclass(metrics, $"{title} ({report.Rows:N0} rows)"));
        console.Write(PerClassMetricsTable.Build(report.PerClass));
        console.Write(ConfusionMatrixTable.Build(metrics.ConfusionMatrix, report.Classes));
    }
}
