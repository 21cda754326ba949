using System.Globalization;
using ScottPlot;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>
/// Renders the comparison chart of docs/benchmarks.md from the results file run-vs-pytorch.sh writes: one row per
/// figure, tab-separated <c>label, raw ratio, normalised ratio (or empty), target (or empty)</c>. Each figure gets a
/// bar for the raw ratio and, where there is one, a bar for the matmul-normalised ratio; targets are drawn as ticks.
/// </summary>
public static class ComparisonChart
{
    /// <summary>One figure of the chart.</summary>
    public sealed record Row(string Label, double Raw, double? Normalised, double? Target);

    /// <summary>Parses the results file.</summary>
    public static List<Row> Read(string path)
    {
        static double? Maybe(string s) => string.IsNullOrWhiteSpace(s) ? null : double.Parse(s, CultureInfo.InvariantCulture);
        return File.ReadLines(path)
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split('\t'))
            .Select(f => new Row(f[0], double.Parse(f[1], CultureInfo.InvariantCulture),
                f.Length > 2 ? Maybe(f[2]) : null, f.Length > 3 ? Maybe(f[3]) : null))
            .ToList();
    }

    /// <summary>Writes the PNG chart of <paramref name="input"/> to <paramref name="output"/>.</summary>
    public static void Render(string input, string output)
    {
        var rows = Read(input);
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
        plot.Axes.Bottom.TickLabelStyle.Rotation = 35;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        plot.Axes.Bottom.MinimumSize = 170;
        plot.Axes.Margins(bottom: 0);
        plot.Title("Microsoft.ML.LoRA (TorchSharp) vs PyTorch eager, 2 CPU threads");
        plot.YLabel("ratio (higher is better; LoRA/full rows: lower is better)");
        plot.Legend.ManualItems.Add(new LegendItem { LabelText = "raw ratio", FillColor = rawColor });
        plot.Legend.ManualItems.Add(new LegendItem { LabelText = "divided by the matmul ratio", FillColor = normColor });
        plot.Legend.ManualItems.Add(new LegendItem { LabelText = "target", LineColor = Colors.Crimson, LineWidth = 3 });
        plot.Legend.Alignment = Alignment.UpperRight;
        plot.ShowLegend();
        plot.SavePng(output, 1400, 700);
    }
}
