using Microsoft.ML.LoRA.Cli.Infrastructure;
using Spectre.Console.Rendering;

namespace Microsoft.ML.LoRA.Tests.Cli.Reporting;

/// <summary>Renders Spectre output as the plain text a redirected stdout receives.</summary>
public static class SpectreText
{
    public static string Render(IRenderable renderable)
    {
        var writer = new StringWriter();
        ConsoleFactory.Create(writer, interactive: false).Write(renderable);
        return writer.ToString();
    }

    /// <summary>The cells of the table row whose first cell is <paramref name="label"/>.</summary>
    public static string[] Row(string rendered, string label) =>
        rendered.Split('\n')
            .Select(line => line.Split('│', StringSplitOptions.TrimEntries))
            .Where(cells => cells.Length > 2)
            .Select(cells => cells[1..^1])
            .First(cells => cells[0] == label);
}
