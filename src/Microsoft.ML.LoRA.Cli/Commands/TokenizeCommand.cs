using System.CommandLine;
using System.Text.Json;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Tokenization;

namespace Microsoft.ML.LoRA.Cli.Commands;

// ML.NET has a namespace Microsoft.ML.Command, which would hide System.CommandLine.Command here.
using Command = System.CommandLine.Command;

/// <summary>
/// <c>lora tokenize --model DIR --texts texts.json [--max-length N]</c>: the token ids the model folder's tokenizer
/// gives each text of a JSON array of strings, printed as a JSON array of id arrays and nothing else on stdout. For
/// comparing tokenization with Hugging Face's (<c>tokenizer(text)["input_ids"]</c>).
/// </summary>
internal sealed class TokenizeCommand : CliCommand
{
    readonly Option<string> _model = new("--model", "-m")
    {
        Description = "Model folder: config.json and the tokenizer files (weights are not read)",
        HelpName = "DIR",
        Required = true,
    };

    readonly Option<string> _texts = new("--texts")
    {
        Description = "JSON file holding an array of strings, the texts to tokenize",
        HelpName = "FILE",
        Required = true,
    };

    readonly Option<int?> _maxLength = new("--max-length")
    {
        Description = "Tokens per text including special tokens; longer text is truncated [default: the model's position limit]",
        HelpName = "N",
    };

    public override string Name => "tokenize";

    public override string Description =>
        "Print the token ids a model folder's tokenizer gives each text of a JSON array of strings, as a JSON array of " +
        "id arrays (special tokens included, as Hugging Face's tokenizer(text)[\"input_ids\"]). Only the JSON goes to stdout.";

    protected override void Configure(Command command)
    {
        command.Options.Add(_model);
        command.Options.Add(_texts);
        command.Options.Add(_maxLength);
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, CliContext context, CancellationToken cancellationToken)
    {
        string folder = parseResult.GetValue(_model)!;
        string configPath = Path.Combine(folder, "config.json");
        if (!File.Exists(configPath)) throw new FileNotFoundException($"No config.json in the model folder {Path.GetFullPath(folder)}", configPath);
        var encoder = TextEncoders.FromFolder(folder, TransformerConfig.Load(configPath), parseResult.GetValue(_maxLength));
        var texts = ReadTexts(parseResult.GetValue(_texts)!);
        var ids = new List<int[]>(texts.Count);
        foreach (var text in texts)
        {
            cancellationToken.ThrowIfCancellationRequested();
            ids.Add(encoder.Encode(text).InputIds.ToArray());
        }
        JsonOutput.Write(context.Out, ids, indented: false);
        return Task.FromResult(ExitCodes.Success);
    }

    static List<string> ReadTexts(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Texts file not found: {Path.GetFullPath(path)}", path);
        List<string?>? texts;
        try
        {
            texts = JsonSerializer.Deserialize<List<string?>>(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new FormatException($"{path} is not a JSON array of strings ({e.Message})");
        }
        if (texts is null || texts.Any(t => t is null)) throw new FormatException($"{path} is not a JSON array of strings (null found)");
        return texts!;
    }
}
