using Microsoft.ML.LoRA.Training;
using ScottPlot;

namespace Microsoft.ML.LoRA.Cli.Reporting;

/// <summary>
/// A PNG line chart of a training run: the training loss of every step (faint) and smoothed, the training and
/// validation loss per epoch on the left axis, validation accuracy on the right axis (always 0 to 1), a dashed line
/// at the epoch the model kept, and the legend below the figure. Drawn with ScottPlot (SkiaSharp).
/// </summary>
internal static class TrainingChart
{
    /// <summary>The chart's file name in a run folder.</summary>
    public const string DefaultFileName = "training.png";

    /// <summary>Draws <paramref name="history"/> into <paramref name="runFolder"/> (created if missing) and returns the PNG's path.</summary>
    public static string Save(TrainingHistory history, string runFolder, string fileName = DefaultFileName, int width = 900, int height = 500)
    {
        ArgumentNullException.ThrowIfNull(history);
        if (history.Epochs.Count == 0) throw new ArgumentException("The training history has no epochs to plot.", nameof(history));
        Directory.CreateDirectory(runFolder);
        var path = Path.Combine(runFolder, fileName);
        var temporary = Path.Combine(runFolder, $".{Path.GetFileNameWithoutExtension(fileName)}.{Guid.NewGuid():N}.png");
        try
        {
            using (var plot = Draw(history)) plot.SavePng(temporary, width, height);
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
        return path;
    }

    /// <summary>The chart of <paramref name="history"/> (the caller disposes it).</summary>
    internal static Plot Draw(TrainingHistory history)
    {
        var epochs = history.Epochs;
        double[] x = epochs.Select(e => (double)e.Epoch).ToArray();
        var plot = new Plot();
        plot.Title(history.Cancelled ? "Training (cancelled)" : history.StoppedEarly ? "Training (stopped early)" : "Training");
        plot.Axes.Bottom.Label.Text = "Epoch";
        plot.Axes.Left.Label.Text = "Loss";
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };

        if (StepLossCurve.Of(history) is { } steps)
        {
            var raw = plot.Add.ScatterLine(steps.Epoch, steps.Loss);
            raw.Color = Colors.Gray.WithAlpha(0.35);
            raw.LineWidth = 1;
            raw.LegendText = "Training loss per step";
            var smoothed = plot.Add.ScatterLine(steps.Epoch, steps.Smoothed);
            smoothed.LineWidth = 2;
            smoothed.LegendText = $"Training loss per step, smoothed ({StepLossCurve.WindowFor(steps.Loss.Length)} steps)";
        }

        var train = plot.Add.Scatter(x, epochs.Select(e => e.TrainLoss).ToArray());
        train.LegendText = "Training loss per epoch";
        train.LineWidth = 2;
        train.MarkerSize = 8;

        if (epochs.All(e => e.ValidationLoss is not null))
        {
            var validation = plot.Add.Scatter(x, epochs.Select(e => e.ValidationLoss!.Value).ToArray());
            validation.LegendText = "Validation loss";
            validation.LineWidth = 2;
            validation.MarkerSize = 8;
        }

        if (epochs.All(e => e.ValidationAccuracy is not null))
        {
            var accuracy = plot.Add.Scatter(x, epochs.Select(e => e.ValidationAccuracy!.Value).ToArray());
            accuracy.LegendText = "Validation accuracy (right axis)";
            accuracy.LineWidth = 2;
            accuracy.MarkerSize = 8;
            accuracy.Axes.YAxis = plot.Axes.Right;
            plot.Axes.Right.Label.Text = "Accuracy";
            plot.Axes.Rules.Add(new ScottPlot.AxisRules.LockedVertical(plot.Axes.Right, 0, 1));
        }

        if (epochs.Any(e => e.Epoch == history.BestEpoch))
        {
            var best = plot.Add.VerticalLine(history.BestEpoch);
            best.LinePattern = LinePattern.Dashed;
            best.LegendText = $"Kept: epoch {history.BestEpoch}";
        }
        // Below the figure, outside the data area: the legend never covers a curve.
        plot.ShowLegend(Edge.Bottom);
        return plot;
    }
}
