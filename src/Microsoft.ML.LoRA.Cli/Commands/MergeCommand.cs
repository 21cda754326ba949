using System.CommandLine;
using Microsoft.ML;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Cli.Options;
using Microsoft.ML.LoRA.Persistence;

namespace Microsoft.ML.LoRA.Cli.Commands;

// ML.NET has a namespace Microsoft.ML.Command, which would hide System.CommandLine.Command here.
using Command = System.CommandLine.Command;

/// <summary>
/// <c>lora merge --model RUN_DIR/model.zip --output DIR</c>: writes a plain Hugging Face checkpoint folder with the
/// adapters folded into the weights (config.json with the labels, model.safetensors, tokenizer files).
/// </summary>
internal sealed class MergeCommand : CliCommand
{
    readonly SavedModelOptionSet _model = new();
    readonly Option<string> _output = new("--output", "-o") { Description = "Folder to write the merged checkpoint to", HelpName = "DIR", Required = true };

    public override string Name => "merge";

    public override string Description =>
        "Fold a saved model's adapters into the weights and write a Hugging Face checkpoint folder " +
        "(AutoModelForSequenceClassification.from_pretrained loads it; so does 'lora logits').";

    protected override void Configure(Command command)
    {
        _model.AddTo(command);
        command.Options.Add(_output);
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, CliContext context, CancellationToken cancellationToken)
    {
        var model = _model.Load(new MLContext(), parseResult, out _);
        try
        {
            var lora = SavedModelOptionSet.LoraStage(model);
            var folder = parseResult.GetValue(_output)!;
            MergedCheckpoint.Write(lora.Model, lora.LabelNames, folder, lora.Info.TokenizerFiles);
            context.Out.WriteLine($"Wrote the merged checkpoint to {Path.GetFullPath(folder)} ({lora.Info.BaseModel.ModelType}, {lora.LabelNames.Count} labels).");
            return Task.FromResult(ExitCodes.Success);
        }
        finally
        {
            SavedModelOptionSet.Dispose(model);
        }
    }
}
