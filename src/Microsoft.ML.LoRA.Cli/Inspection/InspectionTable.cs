using System.Globalization;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Microsoft.ML.LoRA.Cli.Inspection;

/// <summary>The human-readable report of <c>lora inspect</c>: a heading, the counts table and what trains.</summary>
internal static class InspectionTable
{
    static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static IRenderable Build(ModelInspection i)
    {
        var c = i.Counts;
        var heading = new Markup(Markup.Escape(
            $"{i.Config.ModelType} · {i.Config.NumLayers} layers · hidden {i.Config.HiddenSize} · {i.NumLabels} labels"));
        var table = new Table()
            .AddColumn("Parameters")
            .AddColumn(new TableColumn("Count").RightAligned())
            .AddColumn(new TableColumn("% of total").RightAligned());
        table.AddRow("Total", Count(c.Total), Percent(c.Total, c.Total));
        table.AddRow("Base model", Count(c.Base), Percent(c.Base, c.Total));
        table.AddRow("Trainable", Count(c.Trainable), Percent(c.Trainable, c.Total));
        table.AddRow("LoRA", Count(c.Lora), Percent(c.Lora, c.Total));

        var lines = new List<IRenderable> { heading, table };
        lines.Add(new Markup(i.HasAdapters
            ? $"LoRA: rank {i.Lora.Rank}, alpha {i.Lora.Alpha.ToString(Invariant)}, {i.AdaptedModules.Count} layers adapted " +
              $"({Markup.Escape(string.Join(", ", i.TargetModules))})"
            : "LoRA: none"));
        lines.Add(new Markup(i.SavedModules.Count > 0
            ? $"Trained in full: {Markup.Escape(string.Join(", ", i.SavedModules))}"
            : "Trained in full: nothing"));
        return new Rows(lines);
    }

    /// <summary>A count with thousands separators: 66,955,010.</summary>
    public static string Count(long n) => n.ToString("N0", Invariant);

    static string Percent(long part, long total) => total == 0 ? "-" : (100.0 * part / total).ToString("0.00", Invariant);
}
