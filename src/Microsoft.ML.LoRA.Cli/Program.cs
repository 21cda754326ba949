using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using Microsoft.ML.LoRA.Cli.Infrastructure;

namespace Microsoft.ML.LoRA.Cli;

// ML.NET has a namespace Microsoft.ML.Command, which would hide System.CommandLine.Command here.
using Command = System.CommandLine.Command;

/// <summary>
/// The <c>lora</c> command line: LoRA fine-tuning of Hugging Face text classifiers from a terminal. A thin shell over
/// the Microsoft.ML.LoRA library; every subcommand is a <see cref="CliCommand"/> listed in <see cref="CommandCatalog"/>.
/// </summary>
public static class Program
{
    /// <summary>The executable's name, used in help and messages.</summary>
    public const string Name = "lora";

    /// <summary>Process entry point: the real console, and Ctrl+C cancels the running command.</summary>
    public static int Main(string[] args) =>
        RunAsync(args, Console.Out, Console.Error, handleTermination: true, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>
    /// Runs the CLI in-process with the given writers as stdout and stderr and returns the exit code. Never throws for
    /// bad input: errors are reported as one line on <paramref name="stderr"/> with a non-zero exit code.
    /// </summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr) =>
        RunAsync(args, stdout, stderr, handleTermination: false, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>As <see cref="Run"/>, asynchronously, cancelled by <paramref name="cancellationToken"/>.</summary>
    public static Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken = default) =>
        RunAsync(args, stdout, stderr, handleTermination: false, cancellationToken);

    static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, bool handleTermination, CancellationToken cancellationToken)
    {
        try
        {
            var context = new CliContext(stdout, stderr);
            var root = BuildRootCommand(context);
            var parseResult = root.Parse(args);
            if (parseResult.Action is ParseErrorAction) return ReportParseError(parseResult, stderr);
            var invocation = new InvocationConfiguration
            {
                Output = stdout,
                Error = stderr,
                EnableDefaultExceptionHandler = false,
            };
            if (!handleTermination) invocation.ProcessTerminationTimeout = null;
            return await parseResult.InvokeAsync(invocation, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            return ErrorMapping.Report(e, stderr);
        }
        finally
        {
            stdout.Flush();
            stderr.Flush();
        }
    }

    /// <summary>The root command with every subcommand of the catalog.</summary>
    internal static Command BuildRootCommand(CliContext context)
    {
        var root = new Command(Name,
            "Fine-tune Hugging Face transformer text classifiers (BERT, DistilBERT, RoBERTa, GPT-2, DeBERTa-v2/v3, Llama, Mistral, Qwen2) with LoRA, " +
            "inside ML.NET. Run 'lora <command> --help' for a command's options.");
        root.Options.Add(new HelpOption());
        root.Options.Add(new VersionOption());
        foreach (var command in CommandCatalog.Create()) root.Subcommands.Add(command.Build(context));
        return root;
    }

    static string OneLine(string message) =>
        string.Join(' ', message.Split((char[])['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    /// <summary>One line: the first parse error and where to find help.</summary>
    static int ReportParseError(ParseResult parseResult, TextWriter stderr)
    {
        var path = new List<string>();
        for (var result = parseResult.CommandResult; result is not null; result = result.Parent as System.CommandLine.Parsing.CommandResult)
            path.Insert(0, result.Command.Name);
        var messages = parseResult.Errors.Select(e => OneLine(e.Message)).Distinct().ToList();
        var message = messages.Count > 0 ? string.Join(' ', messages) : "invalid command line";
        stderr.WriteLine($"{Name}: error: {message.TrimEnd()} (see '{string.Join(' ', path)} --help')");
        return ExitCodes.Usage;
    }
}
