using Microsoft.ML.LoRA.Training;

namespace Microsoft.ML.LoRA.Cli.Reporting;

/// <summary>
/// The training loss of every optimizer step placed on the epoch axis (step k of an epoch of n steps sits at
/// epoch − 1 + k/n, so an epoch's last step meets that epoch's summary point), with a smoothed copy: the mean over a
/// centred window of about a 25th of the steps, so the trend shows through the noise of single batches.
/// </summary>
internal sealed record StepLossCurve(double[] Epoch, double[] Loss, double[] Smoothed)
{
    /// <summary>The curve of <paramref name="history"/>, or null when it has no per-step losses (older files).</summary>
    public static StepLossCurve? Of(TrainingHistory history)
    {
        if (history.StepLosses is not { Count: > 0 } losses || history.StepsPerEpoch <= 0) return null;
        var x = Enumerable.Range(1, losses.Count).Select(step => (double)step / history.StepsPerEpoch).ToArray();
        var y = losses.Select(l => (double)l).ToArray();
        return new StepLossCurve(x, y, Smooth(y, WindowFor(y.Length)));
    }

    /// <summary>The smoothing window for a run of <paramref name="steps"/> steps: odd, about steps / 25, at least 1.</summary>
    public static int WindowFor(int steps) => Math.Max(1, steps / 25) | 1;

    /// <summary>The mean of each value's centred window (shrunk at the ends, never reaching past them).</summary>
    public static double[] Smooth(IReadOnlyList<double> values, int window)
    {
        int half = window / 2;
        var prefix = new double[values.Count + 1];
        for (int i = 0; i < values.Count; i++) prefix[i + 1] = prefix[i] + values[i];
        var result = new double[values.Count];
        for (int i = 0; i < values.Count; i++)
        {
            int from = Math.Max(0, i - half), to = Math.Min(values.Count, i + half + 1);
            result[i] = (prefix[to] - prefix[from]) / (to - from);
        }
        return result;
    }
}
