using System.CommandLine;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Cli.Options;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tokenization;
using Microsoft.ML.LoRA.Training;
using TorchSharp;

namespace Microsoft.ML.LoRA.Cli.Commands;

// ML.NET has a namespace Microsoft.ML.Command, which would hide System.CommandLine.Command here.
using Command = System.CommandLine.Command;

/// <summary>
/// <c>lora init-model --config CONFIG.json [--tokenizer DIR] --output DIR</c>: writes a Hugging Face model folder with
/// randomly initialised weights for a config (no classification head) and, optionally, tokenizer files: for trying the
/// tools and measuring speed where no pretrained weights can be downloaded.
/// </summary>
internal sealed class InitModelCommand : CliCommand
{
    readonly Option<string> _config = new("--config") { Description = "A Hugging Face config.json", HelpName = "FILE", Required = true };
    readonly Option<string> _tokenizer = new("--tokenizer") { Description = "Folder whose tokenizer files (vocab.txt, tokenizer.json, vocab.json, merges.txt, ...) are copied", HelpName = "DIR" };
    readonly Option<string> _output = new("--output", "-o") { Description = "Folder to write the model to", HelpName = "DIR", Required = true };
    readonly Option<int> _seed = new("--seed") { Description = "Seed of the random weights", HelpName = "N", DefaultValueFactory = _ => 0, CustomParser = ValueParsers.AnyInt("--seed") };

    public override string Name => "init-model";

    public override string Description =>
        "Write a model folder with random weights for a config.json (and copied tokenizer files): a stand-in for a " +
        "pretrained checkpoint when none can be downloaded. Random weights learn far less than pretrained ones.";

    protected override void Configure(Command command)
    {
        foreach (var o in new Option[] { _config, _tokenizer, _output, _seed }) command.Options.Add(o);
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, CliContext context, CancellationToken cancellationToken)
    {
        var config = TransformerConfig.Load(parseResult.GetValue(_config)!);
        var folder = Path.GetFullPath(parseResult.GetValue(_output)!);
        var tokenizer = parseResult.GetValue(_tokenizer);
        if (tokenizer is not null && !Directory.Exists(tokenizer)) throw new DirectoryNotFoundException($"Tokenizer folder not found: {tokenizer}");
        Directory.CreateDirectory(folder);
        lock (TorchRandomLock.Sync)
        {
            torch.manual_seed(parseResult.GetValue(_seed));
            using var model = ModelFactory.Create(config, config.NumLabels);
            var head = model.Layout.HeadModules;
            var weights = model.named_parameters()
                .Where(p => !head.Any(h => p.name.StartsWith(h + ".", StringComparison.Ordinal)))
                .ToDictionary(p => p.name, p => (torch.Tensor)p.parameter);
            SafeTensorsWriter.Save(Path.Combine(folder, "model.safetensors"), weights, new Dictionary<string, string> { ["format"] = "pt" });
        }
        File.Copy(parseResult.GetValue(_config)!, Path.Combine(folder, "config.json"), overwrite: true);
        int copied = 0;
        if (tokenizer is not null)
            foreach (var name in TextEncoders.TokenizerFileNames.Where(n => File.Exists(Path.Combine(tokenizer, n))))
            {
                File.Copy(Path.Combine(tokenizer, name), Path.Combine(folder, name), overwrite: true);
                copied++;
            }
        context.Out.WriteLine($"Wrote a random-weight {config.ModelType} model to {folder}" + (copied > 0 ? $" with {copied} tokenizer file(s)." : " (no tokenizer)."));
        return Task.FromResult(ExitCodes.Success);
    }
}
