using System.CommandLine;
using System.Globalization;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Cli.Inspection;
using Microsoft.ML.LoRA.Cli.Options;
using Spectre.Console;

namespace Microsoft.ML.LoRA.Cli.Commands;

// ML.NET has a namespace Microsoft.ML.Command, which would hide System.CommandLine.Command here.
using Command = System.CommandLine.Command;

/// <summary>
/// <c>lora inspect --config config.json [--labels N] [LoRA options] [--json]</c>: builds the model a config describes
/// (no weights needed) and prints its total, trainable and LoRA parameter counts. Without --targets or a --lora-*
/// switch no adapter is attached and only the classification head trains.
/// </summary>
internal sealed class InspectCommand : CliCommand
{
    readonly Option<string> _config = new("--config", "-c")
    {
        Description = "Hugging Face config.json of the model (a model folder's config, or one from the Hub)",
        HelpName = "FILE",
        Required = true,
    };
    readonly Option<int?> _labels = LabelsOption.Create("Number of output classes [default: the config's num_labels, else 2]");
    readonly LoraOptionSet _lora = new();
    readonly OutputOptionSet _output = new();

    public override string Name => "inspect";

    public override string Description =>
        "Count a model's parameters (total, trainable, LoRA) from its config.json alone, with or without LoRA adapters. " +
        "Without --targets or a --lora-* switch no adapter is attached and only the classification head trains.";

    protected override void Configure(Command command)
    {
        command.Options.Add(_config);
        command.Options.Add(_labels);
        _lora.AddTo(command);
        foreach (var option in _lora.QuantizationOptions) command.Options.Remove(option);   // counts do not depend on how the base is kept
        _output.AddTo(command, withOutputFolder: false);
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, CliContext context, CancellationToken cancellationToken)
    {
        var config = TransformerConfig.Load(parseResult.GetValue(_config)!);
        var lora = _lora.Read(parseResult, NoTargetsMeans.NoAdapters);
        int labels = parseResult.GetValue(_labels) ?? config.NumLabels;
        var inspection = ModelInspector.Inspect(config, labels, lora);
        if (parseResult.GetValue(_output.Json))
            JsonOutput.Write(context.Out, InspectionJson.From(inspection));
        else
            context.Console.Write(InspectionTable.Build(inspection));
        return Task.FromResult(ExitCodes.Success);
    }
}
