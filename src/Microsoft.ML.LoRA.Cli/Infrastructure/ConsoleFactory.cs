using Spectre.Console;

namespace Microsoft.ML.LoRA.Cli.Infrastructure;

/// <summary>
/// Creates Spectre consoles. Colours, cursor movement and live displays are used only when the writer is the real
/// terminal (stdout or stderr, not redirected); anything else (a file, a pipe, CI, a test's StringWriter) gets plain
/// text, 120 columns wide.
/// </summary>
internal static class ConsoleFactory
{
    /// <summary>Width used when the output is not a terminal.</summary>
    public const int RedirectedWidth = 120;

    /// <summary>A console over <paramref name="writer"/>, interactive only if it is an unredirected terminal.</summary>
    public static IAnsiConsole Create(TextWriter writer) => Create(writer, IsTerminal(writer));

    /// <summary>A console over <paramref name="writer"/>; <paramref name="interactive"/> turns ANSI and live displays on.</summary>
    public static IAnsiConsole Create(TextWriter writer, bool interactive)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = interactive ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = interactive ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = interactive ? InteractionSupport.Yes : InteractionSupport.No,
        });
        if (!interactive) console.Profile.Width = RedirectedWidth;
        return console;
    }

    /// <summary>True when <paramref name="writer"/> is the process's stdout or stderr and that stream is a terminal.</summary>
    public static bool IsTerminal(TextWriter writer) =>
        (ReferenceEquals(writer, System.Console.Out) && !System.Console.IsOutputRedirected)
        || (ReferenceEquals(writer, System.Console.Error) && !System.Console.IsErrorRedirected);
}
