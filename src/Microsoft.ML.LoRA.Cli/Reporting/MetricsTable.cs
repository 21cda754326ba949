using System.Globalization;
using Microsoft.ML.Data;
using Spectre.Console;

namespace Microsoft.ML.LoRA.Cli.Reporting;

/// <summary>Spectre tables of ML.NET's evaluation metrics, one metric per row, four decimals.</summary>
internal static class MetricsTable
{
    /// <summary>Micro and macro accuracy, log-loss, log-loss reduction (and top-K accuracy when ML.NET computed it).</summary>
    public static Table Multiclass(MulticlassClassificationMetrics metrics, string? title = null)
    {
        var table = New(title);
        Row(table, "Micro accuracy", metrics.MicroAccuracy);
        Row(table, "Macro accuracy", metrics.MacroAccuracy);
        Row(table, "Log-loss", metrics.LogLoss);
        Row(table, "Log-loss reduction", metrics.LogLossReduction);
        if (metrics.TopKPredictionCount > 0) Row(table, $"Top-{metrics.TopKPredictionCount} accuracy", metrics.TopKAccuracy);
        return table;
    }

    /// <summary>Accuracy, AUC, AUPRC, F1, precision and recall of both classes; log-loss and entropy when calibrated.</summary>
    public static Table Binary(BinaryClassificationMetrics metrics, string? title = null)
    {
        var table = New(title);
        Row(table, "Accuracy", metrics.Accuracy);
        Row(table, "AUC (ROC)", metrics.AreaUnderRocCurve);
        Row(table, "AUC (precision-recall)", metrics.AreaUnderPrecisionRecallCurve);
        Row(table, "F1 score", metrics.F1Score);
        Row(table, "Positive precision", metrics.PositivePrecision);
        Row(table, "Positive recall", metrics.PositiveRecall);
        Row(table, "Negative precision", metrics.NegativePrecision);
        Row(table, "Negative recall", metrics.NegativeRecall);
        if (metrics is CalibratedBinaryClassificationMetrics calibrated)
        {
            Row(table, "Log-loss", calibrated.LogLoss);
            Row(table, "Log-loss reduction", calibrated.LogLossReduction);
            Row(table, "Entropy", calibrated.Entropy);
        }
        return table;
    }

    /// <summary>A metric value as the tables show it: four decimals, "n/a" for NaN.</summary>
    public static string Format(double value) =>
        double.IsNaN(value) ? "n/a" : value.ToString("0.0000", CultureInfo.InvariantCulture);

    static Table New(string? title)
    {
        var table = new Table().AddColumn("Metric").AddColumn(new TableColumn("Value").RightAligned());
        if (title is not null) table.Title(Markup.Escape(title));
        return table;
    }

    static void Row(Table table, string name, double value) => table.AddRow(Markup.Escape(name), Format(value));
}
