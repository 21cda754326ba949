using System.CommandLine;

namespace Microsoft.ML.LoRA.Cli.Infrastructure;

// ML.NET has a namespace Microsoft.ML.Command, which would hide System.CommandLine.Command here.
using Command = System.CommandLine.Command;

/// <summary>
/// One <c>lora</c> subcommand: its name, help text, options and what it does. A new command is one class deriving
/// from this (Commands/TrainCommand.cs, ...) plus one line in <see cref="CommandCatalog"/>. Commands do not catch
/// errors: they throw, and <see cref="Program"/> maps the exception to an exit code and a one-line message
/// (<see cref="ErrorMapping"/>). Parse errors and option validators never reach <see cref="ExecuteAsync"/>.
/// </summary>
internal abstract class CliCommand
{
    /// <summary>The subcommand's name (<c>inspect</c>).</summary>
    public abstract string Name { get; }

    /// <summary>The one-paragraph help text.</summary>
    public abstract string Description { get; }

    /// <summary>Adds the command's options (and validators) to <paramref name="command"/>.</summary>
    protected abstract void Configure(Command command);

    /// <summary>Runs the command; returns the exit code (<see cref="ExitCodes.Success"/>) or throws.</summary>
    protected abstract Task<int> ExecuteAsync(ParseResult parseResult, CliContext context, CancellationToken cancellationToken);

    /// <summary>The System.CommandLine command, bound to <paramref name="context"/>.</summary>
    public Command Build(CliContext context)
    {
        var command = new Command(Name, Description);
        Configure(command);
        command.SetAction((parseResult, cancellationToken) => ExecuteAsync(parseResult, context, cancellationToken));
        return command;
    }
}
