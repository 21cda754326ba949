using System.Globalization;
using ScottPlot;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>
/// Renders the comparison chart of docs/benchmarks.md with ScottPlot: for each row of <see cref="BenchmarkReport"/>
/// a bar for the raw ratio and, for ours/anchor rows, a bar for the matmul-normalised ratio; targets are red ticks.
/// </summary>
public static class ComparisonChart
{
    /// <summary>Writes the PNG chart of <paramref name="rows"/> to <paramref name="output"/>.</summary>
    public static void Render(IReadOnlyList<BenchmarkReport.Row> rows, string output)
    {
        var plot = new Plot();
        var rawColor = Colors.SteelBlue;
        var normColor = Colors.DarkOrange;
        var bars = new List<Bar>();
        var ticks = new List<Tick>();
        for (int i = 0; i < rows.Count; i++)
        {
            var r = rows[i];
            double x = i * 3;
            bars.Add(new Bar { Position = x, Value = r.Raw, FillColor = rawColor, Label = r.Raw.ToString("0.00", CultureInfo.InvariantCulture) });
            if (r.Normalised is double n)
                bars.Add(new Bar { Position = x + 1, Value = n, FillColor = normColor, Label = n.ToString("0.00", CultureInfo.InvariantCulture) });
            double centre = r.Normalised is null ? x : x + 0.5;
            ticks.Add(new Tick(centre, r.Label));
            if (r.Target is double t)
            {
                var line = plot.Add.Line(centre - 1.0, t, centre + 1.0, t);
                line.LineColor = Colors.Crimson;
                line.LineWidth = 3;
            }
        }
        var barPlot = plot.Add.Bars(bars);
        barPlot.ValueLabelStyle.FontSize = 11;
        var one = plot.Add.HorizontalLine(1.0);
        one.LineColor = Colors.Gray;
        one.LinePattern = LinePattern.Dashed;

        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.ToArray());
        plot.Axes.Bottom.TickLabelStyle.Rotation = 90;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        plot.Axes.Bottom.MinimumSize = 480;   // the longest label, written downwards
        plot.Axes.Margins(bottom: 0);
        plot.Title("Microsoft.ML.LoRA (TorchSharp) vs PyTorch eager, 2 CPU threads");
        plot.YLabel("ratio (higher is better; LoRA/full rows: lower is better)");
        plot.Legend.ManualItems.Add(new LegendItem { LabelText = "raw ratio", FillColor = rawColor });
        plot.Legend.ManualItems.Add(new LegendItem { LabelText = "divided by the matmul ratio", FillColor = normColor });
        plot.Legend.ManualItems.Add(new LegendItem { LabelText = "target", LineColor = Colors.Crimson, LineWidth = 3 });
        plot.Legend.Alignment = Alignment.UpperRight;
        plot.ShowLegend();
        plot.SavePng(output, 1400, 1150);
    }
}
