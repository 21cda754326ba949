using System.CommandLine;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Cli.Options;
using Microsoft.ML.LoRA.Diagnostics;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;

namespace Microsoft.ML.LoRA.Cli.Commands;

// ML.NET has a namespace Microsoft.ML.Command, which would hide System.CommandLine.Command here.
using Command = System.CommandLine.Command;

/// <summary>
/// <c>lora logits --model DIR [--adapter DIR] --cases cases.json</c>: runs a checkpoint (optionally with a PEFT
/// adapter) on the token ids of a cases file and prints the logits as a JSON array of rows, one per example, and
/// nothing else on stdout (loading messages go to stderr). For checking the model against Hugging Face's.
/// </summary>
internal sealed class LogitsCommand : CliCommand
{
    readonly ModelOptionSet _model = new();
    readonly Option<string> _cases = new("--cases")
    {
        Description = "JSON file with input_ids (and optionally attention_mask, token_type_ids): arrays of equal-length rows",
        HelpName = "FILE",
        Required = true,
    };

    public override string Name => "logits";

    public override string Description =>
        "Run a model (and optionally a PEFT adapter) on the token ids of a cases file and print the logits as a JSON " +
        "array of arrays, one row per example. Only the JSON goes to stdout.";

    protected override void Configure(Command command)
    {
        _model.AddTo(command);
        command.Options.Add(_cases);
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, CliContext context, CancellationToken cancellationToken)
    {
        var cases = LogitsCases.Load(parseResult.GetValue(_cases)!);
        using var model = PretrainedModel.Load(parseResult.GetValue(_model.Model)!, parseResult.GetValue(_model.Labels),
            log: message => context.Error.WriteLine(message));
        if (parseResult.GetValue(_model.Adapter) is { } adapter)
        {
            var info = PeftAdapter.Load(model, adapter);
            context.Error.WriteLine($"Adapter: rank {info.Rank}, {info.AdaptedModules.Count} layers adapted.");
        }
        cancellationToken.ThrowIfCancellationRequested();
        var logits = cases.Run(model);
        JsonOutput.Write(context.Out, logits, indented: false);
        return Task.FromResult(ExitCodes.Success);
    }
}
