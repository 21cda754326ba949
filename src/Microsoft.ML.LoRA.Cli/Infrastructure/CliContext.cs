using Spectre.Console;

namespace Microsoft.ML.LoRA.Cli.Infrastructure;

/// <summary>
/// Where a command writes: <see cref="Out"/> for results (tables, JSON), <see cref="Error"/> for diagnostics and
/// progress, and Spectre consoles over each. Commands never touch <see cref="System.Console"/> directly, so the whole
/// CLI runs in-process against any pair of writers.
/// </summary>
internal sealed class CliContext
{
    public CliContext(TextWriter stdout, TextWriter stderr)
    {
        Out = stdout;
        Error = stderr;
        Console = ConsoleFactory.Create(stdout);
        ErrorConsole = ConsoleFactory.Create(stderr);
    }

    /// <summary>Standard output: the command's result.</summary>
    public TextWriter Out { get; }

    /// <summary>Standard error: messages, warnings and progress.</summary>
    public TextWriter Error { get; }

    /// <summary>A Spectre console over <see cref="Out"/>.</summary>
    public IAnsiConsole Console { get; }

    /// <summary>A Spectre console over <see cref="Error"/>.</summary>
    public IAnsiConsole ErrorConsole { get; }
}
