using System.Globalization;
using System.Text;

namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>
/// Formats ranked trials as an aligned text table: place, trial id, rung, the sweep's metric, a second metric (log-loss,
/// or accuracy when ranking by log-loss), epochs trained, seconds and status.
/// </summary>
internal static class SweepTable
{
    public static string Format(IReadOnlyList<TrialResult> ranked, SweepMetric metric)
    {
        var second = metric == SweepMetric.LogLoss ? SweepMetric.Accuracy : SweepMetric.LogLoss;
        var header = new[] { "#", "trial", "rung", metric.ColumnName(), second.ColumnName(), "epochs", "seconds", "status" };
        var rows = ranked.Select((t, i) => new[]
        {
            (i + 1).ToString(CultureInfo.InvariantCulture),
            t.Id,
            t.Rung.ToString(CultureInfo.InvariantCulture),
            Number(t.Objective),
            Number(t.Metrics?.Get(second) ?? double.NaN),
            t.EpochsTrained.ToString(CultureInfo.InvariantCulture),
            t.Duration.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture),
            t.Status == TrialStatus.Succeeded ? (t.FromEarlierRun ? "ok (earlier run)" : "ok") : "failed: " + t.Error,
        }).ToList();
        var widths = header.Select((h, c) => rows.Select(r => r[c].Length).Append(h.Length).Max()).ToArray();
        var text = new StringBuilder();
        void Line(string[] cells) => text.AppendLine(string.Join("  ", cells.Select((cell, c) => c == cells.Length - 1 ? cell : cell.PadRight(widths[c]))).TrimEnd());
        Line(header);
        foreach (var r in rows) Line(r);
        return text.ToString();
    }

    static string Number(double value) => double.IsNaN(value) ? "-" : value.ToString("F4", CultureInfo.InvariantCulture);
}
