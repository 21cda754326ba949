using System.CommandLine;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Persistence;

namespace Microsoft.ML.LoRA.Cli.Commands;

// ML.NET has a namespace Microsoft.ML.Command, which would hide System.CommandLine.Command here.
using Command = System.CommandLine.Command;

/// <summary>
/// <c>lora export-adapter --model RUN_DIR/model.zip --output DIR</c>: writes the PEFT adapter folder
/// (adapter_config.json, adapter_model.safetensors with the trained head) stored in a saved model.
/// </summary>
internal sealed class ExportAdapterCommand : CliCommand
{
    readonly Option<string> _model = new("--model", "-m") { Description = "Saved model: the model.zip a 'lora train' run folder holds", HelpName = "FILE", Required = true };
    readonly Option<string> _output = new("--output", "-o") { Description = "Folder to write the PEFT adapter to", HelpName = "DIR", Required = true };

    public override string Name => "export-adapter";

    public override string Description =>
        "Write the PEFT adapter of a saved model (adapter_config.json, adapter_model.safetensors); Python loads it with " +
        "PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(base), folder).";

    protected override void Configure(Command command)
    {
        command.Options.Add(_model);
        command.Options.Add(_output);
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, CliContext context, CancellationToken cancellationToken)
    {
        var path = parseResult.GetValue(_model)!;
        var folder = parseResult.GetValue(_output)!;
        LoraModelFile.ExportAdapter(path, folder);
        var manifest = LoraModelFile.ReadManifest(path);
        context.Out.WriteLine($"Wrote the PEFT adapter to {Path.GetFullPath(folder)} (base model: {manifest.BaseModelSource}).");
        return Task.FromResult(ExitCodes.Success);
    }
}
