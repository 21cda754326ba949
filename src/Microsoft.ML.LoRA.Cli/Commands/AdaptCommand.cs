using System.CommandLine;
using System.Globalization;
using Microsoft.ML.LoRA.Adaptation;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Cli.Options;
using Microsoft.ML.LoRA.Cli.Reporting;
using Microsoft.ML.LoRA.Data;
using Microsoft.ML.LoRA.Hub;

namespace Microsoft.ML.LoRA.Cli.Commands;

// ML.NET has a namespace Microsoft.ML.Command, which would hide System.CommandLine.Command here.
using Command = System.CommandLine.Command;

/// <summary>
/// <c>lora adapt --model DIR|HUB-ID --data FILE --output DIR</c>: continued language-model pre-training on the texts
/// of a file (masked LM for BERT, DistilBERT and RoBERTa; next-token prediction for GPT-2), with LoRA or in full,
/// writing a Hugging Face folder that <c>lora train --model</c> takes. A shell over <see cref="DomainAdaptation"/>.
/// </summary>
internal sealed class AdaptCommand : CliCommand
{
    readonly DataOptionSet _data = new();
    readonly LoraOptionSet _lora = new();
    readonly TrainingOptionSet _training = new();
    readonly OutputOptionSet _output = new();

    readonly Option<string> _model = new("--model", "-m")
    {
        Description = "Hugging Face model folder, or Hub id downloaded once into the Hugging Face cache",
        HelpName = "DIR|ID",
        Required = true,
    };

    readonly Option<bool> _offline = new("--offline") { Description = "Never touch the network: use a local folder or the Hub cache only (as HF_HUB_OFFLINE=1)" };

    readonly Option<string> _method = new Option<string>("--method")
    {
        Description = "lora: adapters on the chosen layers (merged into the weights unless --keep-adapter); full: every weight trains",
        DefaultValueFactory = _ => "lora",
    }.AcceptOnlyFromAmong("lora", "full");

    readonly Option<bool> _keepAdapter = new("--keep-adapter")
    {
        Description = "Write the unchanged base weights plus the adapter as a PEFT folder (OUTPUT/adapter) instead of merging it",
    };

    readonly Option<int?> _maxRows = new("--max-rows")
    {
        Description = "Adapt on the first N rows of --data only",
        HelpName = "N",
        CustomParser = ValueParsers.OptionalInt("--max-rows", min: 1),
    };

    readonly Option<double> _maskProbability = new("--mask-probability")
    {
        Description = "Masked LM: share of tokens chosen for prediction (80% [MASK], 10% random, 10% kept), in (0, 1)",
        HelpName = "P",
        DefaultValueFactory = _ => 0.15,
        CustomParser = ValueParsers.Double("--mask-probability", p => p > 0 && p < 1, "a number between 0 and 1 (exclusive)"),
    };

    readonly Option<double> _validationFraction = new("--validation-fraction")
    {
        Description = "Hold out this share of the texts (seeded) and report their loss and perplexity before and after, in [0, 1)",
        HelpName = "F",
        DefaultValueFactory = _ => 0.0,
        CustomParser = ValueParsers.Double("--validation-fraction", f => f >= 0 && f < 1, "a number in [0, 1)"),
    };

    readonly Option<bool> _force = new("--force") { Description = "Replace the output folder if it is not empty" };

    public AdaptCommand()
    {
        // The training options' defaults are fine-tuning's; adaptation has its own (DomainAdaptationOptions).
        var defaults = new DomainAdaptationOptions();
        _training.Epochs.DefaultValueFactory = _ => defaults.Epochs;
        _training.BatchSize.DefaultValueFactory = _ => defaults.BatchSize;
        _training.Warmup.DefaultValueFactory = _ => defaults.WarmupFraction;
        _training.WeightDecay.DefaultValueFactory = _ => defaults.WeightDecay;
        _training.MaxGradNorm.DefaultValueFactory = _ => defaults.MaxGradientNorm;
        _training.BatchSize.Description = "Texts per training step";
        _training.LearningRate.DefaultValueFactory = null;
        _training.LearningRate.Description = "Peak AdamW learning rate (warm-up, then linear decay) [default: 5e-4 with --method lora, 5e-5 with full]";
        _training.MaxLength.Description = "Tokens per text including special tokens; longer text is truncated [default: 128, or the model's limit when lower]";
        _data.Data.Description = "Text file: one text per line (.txt), or TSV, CSV or JSON Lines with a text column (labels are ignored); may be gzipped (.gz)";
        _output.Output.Description = "Folder to write the adapted checkpoint to (must be empty or new, unless --force)";
        _output.Output.Required = true;
        _lora.ModulesToSave.Description = "Base-model modules trained in full beside the adapters, comma-separated names or dotted suffixes " +
                                          "as in PEFT's modules_to_save, or 'none' [default: none; the language-model head stays frozen]";
    }

    public override string Name => "adapt";

    public override string Description =>
        "Adapt a checkpoint to a domain by continued language-model pre-training on unlabelled text (masked LM for " +
        "BERT, DistilBERT and RoBERTa, next-token prediction for GPT-2), with LoRA or in full, and write a Hugging Face " +
        "folder that 'lora train --model' takes, with adapt.json holding the run's figures.";

    protected override void Configure(Command command)
    {
        command.Options.Add(_model);
        command.Options.Add(_offline);
        _data.AddTo(command, withLabel: false, withValidation: false);
        command.Options.Remove(_data.TextPairColumn);   // each text is one example
        command.Options.Add(_maxRows);
        command.Options.Add(_method);
        command.Options.Add(_keepAdapter);
        _lora.AddTo(command);
        command.Options.Remove(_lora.Head);   // there is no classification head; the language-model head stays frozen
        foreach (var option in _lora.QuantizationOptions) command.Options.Remove(option);   // domain adaptation loads no quantized base
        foreach (var option in new Option[] { _training.Epochs, _training.BatchSize, _training.LearningRate, _training.MaxLength,
                     _training.Warmup, _training.WeightDecay, _training.MaxGradNorm, _training.Threads })
            command.Options.Add(option);
        command.Options.Add(_maskProbability);
        command.Options.Add(_validationFraction);
        _output.AddTo(command, withOutputFolder: true);
        command.Options.Add(_force);
        command.Validators.Add(result =>
        {
            if (result.GetResult(_keepAdapter) is { Implicit: false } && result.GetResult(_method) is { Implicit: false } m
                && m.Tokens.Count > 0 && m.Tokens[^1].Value == "full")
                result.AddError("--keep-adapter needs --method lora: full adaptation has no adapter to keep.");
        });
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, CliContext context, CancellationToken cancellationToken)
    {
        var selection = _data.Read(parseResult);
        var output = Path.GetFullPath(parseResult.GetValue(_output.Output)!);
        bool force = parseResult.GetValue(_force);
        if (!force && Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any())
            throw new CliUsageException($"The output folder {output} is not empty; choose another folder or pass --force to replace it.");
        var method = parseResult.GetValue(_method) == "full" ? AdaptationMethod.Full : AdaptationMethod.Lora;
        var options = new DomainAdaptationOptions
        {
            ModelPath = parseResult.GetValue(_model)!,
            Hub = parseResult.GetValue(_offline) ? new HubOptions { Offline = true } : null,
            OutputPath = output,
            Overwrite = force,
            Method = method,
            KeepAdapter = parseResult.GetValue(_keepAdapter),
            Lora = _lora.Read(parseResult, NoTargetsMeans.LibraryDefault),
            Epochs = parseResult.GetValue(_training.Epochs),
            BatchSize = parseResult.GetValue(_training.BatchSize),
            LearningRate = parseResult.GetResult(_training.LearningRate) is { Implicit: false } ? parseResult.GetValue(_training.LearningRate) : null,
            MaxSequenceLength = parseResult.GetValue(_training.MaxLength),
            WarmupFraction = parseResult.GetValue(_training.Warmup),
            WeightDecay = parseResult.GetValue(_training.WeightDecay),
            MaxGradientNorm = parseResult.GetValue(_training.MaxGradNorm),
            Threads = parseResult.GetValue(_training.Threads),
            MaskProbability = parseResult.GetValue(_maskProbability),
            ValidationFraction = parseResult.GetValue(_validationFraction),
            Seed = selection.Seed,
            Log = line => { context.Error.WriteLine(line); context.Error.Flush(); },
        };
        var texts = UnlabeledTextFile.Read(selection.DataPath, selection.FileOptions);
        if (parseResult.GetValue(_maxRows) is int maxRows) texts = texts.Take(maxRows);

        DomainAdaptationResult result;
        using (var progress = TrainingProgressDisplay.Create(context.ErrorConsole))
            result = DomainAdaptation.Run(options, texts, progress, cancellationToken);

        if (parseResult.GetValue(_output.Json))
        {
            JsonOutput.Write(context.Out, result);
            return Task.FromResult(ExitCodes.Success);
        }
        var inv = CultureInfo.InvariantCulture;
        var kind = result.Method == AdaptationMethod.Full ? "full" : result.KeptAdapter ? "LoRA, adapter in adapter/" : "LoRA, merged";
        context.Out.WriteLine($"Adapted checkpoint: {result.OutputPath} ({result.Architecture}, {kind})");
        context.Out.WriteLine(string.Format(inv, "Texts: {0:N0} trained{1}; {2} epoch(s), {3:N0} steps, {4:F1} s",
            result.Rows, result.ValidationRows > 0 ? $", {result.ValidationRows:N0} held out" : "", result.Epochs, result.Steps, result.Seconds));
        context.Out.WriteLine(string.Format(inv, "Loss on {0:N0} training texts: {1:F4} -> {2:F4}", result.LossSampleRows, result.InitialLoss, result.FinalLoss));
        if (result.ValidationLossBefore is double before && result.ValidationLossAfter is double after)
            context.Out.WriteLine(string.Format(inv, "Held-out loss: {0:F4} -> {1:F4} (perplexity {2:F1} -> {3:F1})",
                before, after, result.ValidationPerplexityBefore, result.ValidationPerplexityAfter));
        return Task.FromResult(ExitCodes.Success);
    }
}
