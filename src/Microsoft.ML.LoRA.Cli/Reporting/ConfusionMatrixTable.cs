using System.Globalization;
using Microsoft.ML.Data;
using Spectre.Console;

namespace Microsoft.ML.LoRA.Cli.Reporting;

/// <summary>
/// The confusion matrix as a Spectre table: one row per actual class, one column per predicted class, each row's
/// recall at its end and each column's precision in the last row.
/// </summary>
internal static class ConfusionMatrixTable
{
    public static Table Build(ConfusionMatrix matrix, IReadOnlyList<string>? classNames = null, string? title = "Confusion matrix")
    {
        var names = PerClassMetrics.Names(matrix, classNames);
        var metrics = PerClassMetrics.From(matrix, names);
        var table = new Table().AddColumn("Actual \\ Predicted");
        if (title is not null) table.Title(Markup.Escape(title));
        foreach (var name in names) table.AddColumn(new TableColumn(Markup.Escape(name)).RightAligned());
        table.AddColumn(new TableColumn("Recall").RightAligned());
        for (int i = 0; i < names.Count; i++)
        {
            var cells = new List<string> { Markup.Escape(names[i]) };
            cells.AddRange(matrix.Counts[i].Select((count, j) => i == j ? $"[bold]{Count(count)}[/]" : Count(count)));
            cells.Add(MetricsTable.Format(metrics[i].Recall));
            table.AddRow(cells.ToArray());
        }
        var precision = new List<string> { "Precision" };
        precision.AddRange(metrics.Select(m => MetricsTable.Format(m.Precision)));
        precision.Add("");
        table.AddRow(precision.ToArray());
        return table;
    }

    static string Count(double count) => count.ToString("#,0.##", CultureInfo.InvariantCulture);
}
