using System.CommandLine;

namespace Microsoft.ML.LoRA.Cli.Options;

// ML.NET has a namespace Microsoft.ML.Command, which would hide System.CommandLine.Command here.
using Command = System.CommandLine.Command;

/// <summary>
/// Output options shared by the commands: --json (machine-readable stdout: exactly one JSON document, with messages
/// and progress on stderr) and --output (the folder a run writes its files to).
/// </summary>
internal sealed class OutputOptionSet
{
    public Option<bool> Json { get; } = new("--json")
    {
        Description = "Print the result as one JSON object on stdout instead of tables",
    };

    public Option<string> Output { get; } = new("--output", "-o")
    {
        Description = "Folder to write the run's files to (adapter, metrics, charts); created if missing",
        HelpName = "DIR",
    };

    /// <summary>Adds --json and, when <paramref name="withOutputFolder"/>, --output.</summary>
    public void AddTo(Command command, bool withOutputFolder)
    {
        command.Options.Add(Json);
        if (withOutputFolder) command.Options.Add(Output);
    }
}
