using System.Globalization;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Cli.Reporting;
using Spectre.Console;

namespace Microsoft.ML.LoRA.Cli.Running;

/// <summary>
/// The tables train and evaluate print: metrics (accuracy over every labelled row, then ML.NET's figures on the rows
/// with a known label), what happened to the rows when some were skipped, had a label the model was not trained on
/// or an empty text, per-class precision/recall/F1 and the confusion matrix.
/// </summary>
internal static class Results
{
    public static void Print(IAnsiConsole console, EvaluationReport report, MulticlassClassificationMetrics metrics, string title)
    {
        console.Write(Metrics(report, metrics, $"{title} ({report.RowsScored:N0} rows)"));
        if (report.HasRowsToReport) console.Write(Rows(report));
        if (report.UnseenLabels.Count > 0) console.Write(UnseenLabels(report));
        console.Write(PerClassMetricsTable.Build(report.PerClass));
        console.Write(ConfusionMatrixTable.Build(metrics.ConfusionMatrix, report.Classes));
    }

    /// <summary>The metrics table: the honest accuracies first; ML.NET's known-label accuracies too when they differ in scope.</summary>
    public static Table Metrics(EvaluationReport report, MulticlassClassificationMetrics metrics, string title)
    {
        var table = new Table().AddColumn("Metric").AddColumn(new TableColumn("Value").RightAligned()).Title(Markup.Escape(title));
        void Row(string name, double? value) => table.AddRow(Markup.Escape(name), value is { } v ? MetricsTable.Format(v) : "n/a");
        bool partial = report.KnownLabels.Rows != report.RowsScored;
        Row("Micro accuracy", report.MicroAccuracy);
        Row("Macro accuracy", report.MacroAccuracy);
        string known = partial ? " (known labels)" : "";
        Row("Log-loss" + known, report.LogLoss);
        Row("Log-loss reduction" + known, report.LogLossReduction);
        if (metrics.TopKPredictionCount > 0) Row($"Top-{metrics.TopKPredictionCount} accuracy{known}", metrics.TopKAccuracy);
        if (partial)
        {
            Row("Micro accuracy (known labels)", report.KnownLabels.MicroAccuracy);
            Row("Macro accuracy (known labels)", report.KnownLabels.MacroAccuracy);
        }
        return table;
    }

    /// <summary>Where every row went.</summary>
    public static Table Rows(EvaluationReport report)
    {
        var table = new Table().AddColumn("Rows").AddColumn(new TableColumn("Count").RightAligned()).Title("Rows");
        void Row(string name, long count) => table.AddRow(Markup.Escape(name), count.ToString("N0", CultureInfo.InvariantCulture));
        Row("Read", report.RowsRead);
        Row("Evaluated (have a label)", report.RowsScored);
        foreach (var skipped in report.Skipped) Row($"Skipped: {skipped.Reason}", skipped.Rows);
        long unseen = report.UnseenLabels.Sum(u => u.Rows);
        if (unseen > 0) Row($"Label not seen in training ({report.UnseenLabels.Count} labels), counted wrong", unseen);
        if (report.EmptyTextRows > 0) Row("Empty text (scored as it is)", report.EmptyTextRows);
        return table;
    }

    /// <summary>The labels the model was not trained on: their rows and the classes predicted for them.</summary>
    public static Table UnseenLabels(EvaluationReport report)
    {
        var table = new Table().AddColumn("Label").AddColumn(new TableColumn("Rows").RightAligned()).AddColumn("Predicted as")
            .Title("Labels not seen in training (counted wrong)");
        foreach (var u in report.UnseenLabels)
        {
            var predicted = string.Join(", ", u.PredictedAs.Where(p => p.Value > 0).OrderByDescending(p => p.Value)
                .Select(p => $"{p.Key} {p.Value.ToString("N0", CultureInfo.InvariantCulture)}"));
            table.AddRow(Markup.Escape(u.Label), u.Rows.ToString("N0", CultureInfo.InvariantCulture), Markup.Escape(predicted));
        }
        return table;
    }
}
