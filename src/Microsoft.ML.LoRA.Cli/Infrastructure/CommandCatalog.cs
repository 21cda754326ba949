using Microsoft.ML.LoRA.Cli.Commands;

namespace Microsoft.ML.LoRA.Cli.Infrastructure;

/// <summary>The subcommands of <c>lora</c>, in the order help lists them. Add a command here.</summary>
internal static class CommandCatalog
{
    public static IReadOnlyList<CliCommand> Create() => new CliCommand[]
    {
        new TrainCommand(),
        new AdaptCommand(),
        new EvaluateCommand(),
        new PredictCommand(),
        new SweepCommand(),
        new InspectCommand(),
        new LogitsCommand(),
        new TokenizeCommand(),
        new MergeCommand(),
        new ExportAdapterCommand(),
        new ExportOnnxCommand(),
        new InitModelCommand(),
    };
}
