namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>
/// The order of a sweep's results: later rungs first; within a rung successful trials before failed ones, then by the
/// metric (NaN last), then by log-loss (when ranking by another metric), then by plan order. Deterministic, so a
/// resumed sweep ends with the same table.
/// </summary>
internal sealed class TrialRanking(SweepMetric metric) : IComparer<TrialResult>
{
    public static List<TrialResult> Rank(IEnumerable<TrialResult> trials, SweepMetric metric) =>
        trials.OrderBy(t => t, new TrialRanking(metric)).ToList();

    public int Compare(TrialResult? x, TrialResult? y)
    {
        if (ReferenceEquals(x, y)) return 0;
        if (x is null) return 1;
        if (y is null) return -1;
        int c = y.Rung.CompareTo(x.Rung);
        if (c != 0) return c;
        c = x.Status.CompareTo(y.Status);
        if (c != 0) return c;
        c = CompareValues(x.Objective, y.Objective, metric.LowerIsBetter());
        if (c != 0) return c;
        if (metric != SweepMetric.LogLoss)
        {
            c = CompareValues(x.Metrics?.LogLoss ?? double.NaN, y.Metrics?.LogLoss ?? double.NaN, lowerIsBetter: true);
            if (c != 0) return c;
        }
        return x.Sequence.CompareTo(y.Sequence);
    }

    /// <summary>Negative when <paramref name="a"/> ranks before <paramref name="b"/>; NaN ranks last.</summary>
    static int CompareValues(double a, double b, bool lowerIsBetter)
    {
        bool aNaN = double.IsNaN(a), bNaN = double.IsNaN(b);
        if (aNaN || bNaN) return aNaN.CompareTo(bNaN);
        return lowerIsBetter ? a.CompareTo(b) : b.CompareTo(a);
    }
}
