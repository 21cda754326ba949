using System.Globalization;
using Spectre.Console;

namespace Microsoft.ML.LoRA.Cli.Reporting;

/// <summary>Precision, recall, F1 and support per class, with the macro average in the last row.</summary>
internal static class PerClassMetricsTable
{
    public static Table Build(IReadOnlyList<ClassMetrics> classes, string? title = "Per-class metrics")
    {
        var table = new Table()
            .AddColumn("Class")
            .AddColumn(new TableColumn("Precision").RightAligned())
            .AddColumn(new TableColumn("Recall").RightAligned())
            .AddColumn(new TableColumn("F1").RightAligned())
            .AddColumn(new TableColumn("Support").RightAligned());
        if (title is not null) table.Title(Markup.Escape(title));
        foreach (var c in classes) Row(table, c, Markup.Escape(c.Class));
        if (classes.Count > 0) Row(table, PerClassMetrics.MacroAverage(classes), "[italic]Macro average[/]");
        return table;
    }

    static void Row(Table table, ClassMetrics c, string label) => table.AddRow(
        label,
        MetricsTable.Format(c.Precision),
        MetricsTable.Format(c.Recall),
        MetricsTable.Format(c.F1),
        c.Support.ToString("#,0.##", CultureInfo.InvariantCulture));
}
