using Microsoft.ML.LoRA.Training;
using ScottPlot;

namespace Microsoft.ML.LoRA.Cli.Reporting;

/// <summary>
/// A PNG line chart of a training run: training loss (and validation loss) per epoch on the left axis, validation
/// accuracy on the right axis, and a dashed line at the epoch the model kept. Drawn with ScottPlot (SkiaSharp).
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

    static Plot Draw(TrainingHistory history)
    {
        var epochs = history.Epochs;
        double[] x = epochs.Select(e => (double)e.Epoch).ToArray();
        var plot = new Plot();
        plot.Title(history.Cancelled ? "Training (cancelled)" : history.StoppedEarly ? "Training (stopped early)" : "Training");
        plot.Axes.Bottom.Label.Text = "Epoch";
        plot.Axes.Left.Label.Text = "Loss";
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };

        var train = plot.Add.Scatter(x, epochs.Select(e => e.TrainLoss).ToArray());
        train.LegendText = "Training loss";
        train.LineWidth = 2;

        if (epochs.All(e => e.ValidationLoss is not null))
        {
            var validation = plot.Add.Scatter(x, epochs.Select(e => e.ValidationLoss!.Value).ToArray());
            validation.LegendText = "Validation loss";
            validation.LineWidth = 2;
        }

        if (epochs.All(e => e.ValidationAccuracy is not null))
        {
            var accuracy = plot.Add.Scatter(x, epochs.Select(e => e.ValidationAccuracy!.Value).ToArray());
            accuracy.LegendText = "Validation accuracy";
            accuracy.LineWidth = 2;
            accuracy.Axes.YAxis = plot.Axes.Right;
            plot.Axes.Right.Label.Text = "Accuracy";
        }

        if (epochs.Any(e => e.Epoch == history.BestEpoch))
        {
            var best = plot.Add.VerticalLine(history.BestEpoch);
            best.LinePattern = LinePattern.Dashed;
            best.LegendText = $"Kept: epoch {history.BestEpoch}";
        }
        plot.ShowLegend();
        return plot;
    }
}
