using System.Globalization;
using ScottPlot;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>
/// The bar chart of docs/quality.md: for each fine-tuning method one bar per data set with the mean accuracy over
/// the seeds and an error bar of one standard deviation; the legend names the data sets, below the bars.
/// </summary>
public static class QualityChart
{
    static readonly Color[] Palette = { Colors.SteelBlue, Colors.DarkOrange, Colors.SeaGreen, Colors.Purple };

    /// <summary>Writes the PNG chart of <paramref name="rows"/> to <paramref name="output"/>.</summary>
    public static void Render(IReadOnlyList<QualityReport.Row> rows, string output, string title)
    {
        var plot = new Plot();
        var dataSets = rows.Select(r => r.DataSet).Distinct().ToList();
        var methods = QualityReport.Methods.Where(m => rows.Any(r => r.Method == m.Folder)).ToList();
        int slot = dataSets.Count + 1;
        var bars = new List<Bar>();
        var ticks = new List<Tick>();
        for (int m = 0; m < methods.Count; m++)
        {
            for (int d = 0; d < dataSets.Count; d++)
            {
                var row = rows.FirstOrDefault(r => r.Method == methods[m].Folder && r.DataSet == dataSets[d]);
                if (row is null) continue;
                bars.Add(new Bar
                {
                    Position = m * slot + d, Value = row.Mean * 100, Error = row.StandardDeviation * 100,
                    FillColor = Palette[d % Palette.Length],
                    Label = (row.Mean * 100).ToString("F1", CultureInfo.InvariantCulture),
                });
            }
            ticks.Add(new Tick(m * slot + (dataSets.Count - 1) / 2.0, methods[m].Label));
        }
        var barPlot = plot.Add.Bars(bars);
        barPlot.ValueLabelStyle.FontSize = 12;
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.ToArray());
        plot.Axes.Margins(bottom: 0);
        plot.Axes.SetLimitsY(0, 100);
        plot.YLabel("accuracy (%), mean ± sd over seeds");
        plot.Title(title);
        for (int d = 0; d < dataSets.Count; d++)
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = QualityReport.DataSetLabel(dataSets[d]), FillColor = Palette[d % Palette.Length] });
        plot.ShowLegend(Edge.Bottom);
        plot.SavePng(output, 1100, 600);
    }
}
