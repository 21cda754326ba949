using System.CommandLine;
using Microsoft.ML;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Cli.Options;
using Microsoft.ML.LoRA.Cli.Running;
using Microsoft.ML.LoRA.Hub;
using Microsoft.ML.LoRA.Sweeps;

namespace Microsoft.ML.LoRA.Cli.Commands;

// ML.NET has a namespace Microsoft.ML.Command, which would hide System.CommandLine.Command here.
using Command = System.CommandLine.Command;

/// <summary>
/// <c>lora sweep --model M --data FILE --validation FILE|--validation-fraction F --ranks 2,4 --alphas 8,16 ... --output DIR</c>:
/// a hyper-parameter search (grid, random with a budget, or successive halving) over rank, alpha, learning rate,
/// epochs, dropout and the target switches. Writes a results table (CSV, JSON), each trial's model and the best
/// model; rerunning the same command resumes and skips finished trials.
/// </summary>
internal sealed class SweepCommand : CliCommand
{
    readonly DataOptionSet _data = new();
    readonly OutputOptionSet _output = new();

    readonly Option<string> _model = new("--model", "-m")
    {
        Description = "Hugging Face model folder or Hub id",
        HelpName = "DIR|ID",
        DefaultValueFactory = _ => TrainCommand.DefaultModel,
    };

    readonly Option<bool> _offline = new("--offline") { Description = "Never touch the network (local folder or Hub cache only)" };
    readonly Option<int[]?> _ranks = new("--ranks") { Description = "Ranks to try [default: 8]", HelpName = "r,r,...", CustomParser = ValueParsers.IntList("--ranks", 1) };
    readonly Option<double[]?> _alphas = new("--alphas") { Description = "Alphas to try [default: 16]", HelpName = "a,a,...", CustomParser = ValueParsers.DoubleList("--alphas", v => v > 0, "positive numbers") };
    readonly Option<double[]?> _learningRates = new("--learning-rates") { Description = "Learning rates to try [default: 1e-3, the training default]", HelpName = "lr,lr,...", CustomParser = ValueParsers.DoubleList("--learning-rates", v => v > 0, "positive numbers") };
    readonly Option<int[]?> _epochs = new("--epochs") { Description = "Epoch counts to try (grid and random) [default: 3]", HelpName = "n,n,...", CustomParser = ValueParsers.IntList("--epochs", 1) };
    readonly Option<double[]?> _dropouts = new("--dropouts") { Description = "LoRA dropouts to try [default: 0.05]", HelpName = "p,p,...", CustomParser = ValueParsers.DoubleList("--dropouts", v => v >= 0 && v < 1, "numbers in [0, 1)") };
    readonly Dictionary<string, Option<string>> _switches = new[] { "query", "key", "value", "projection", "mlp", "head" }
        .ToDictionary(s => s, s => new Option<string>($"--{s}")
        {
            Description = $"LoRA on the {s} layers: on, off, or both (tried each way) [default: as train does: all but head on]",
        }.AcceptOnlyFromAmong("on", "off", "both"));

    readonly Option<string> _strategy = new Option<string>("--strategy")
    {
        Description = "grid: every combination; random: --budget combinations; halving: successive halving over epochs",
        DefaultValueFactory = _ => "grid",
    }.AcceptOnlyFromAmong("grid", "random", "halving");

    readonly Option<int?> _budget = new("--budget") { Description = "random: trials to sample; halving: configurations in the first rung [default: all]", HelpName = "N", CustomParser = ValueParsers.OptionalInt("--budget", 1) };
    readonly Option<int> _eta = new("--eta") { Description = "halving: keep the best 1/eta of each rung and give survivors eta times the epochs", HelpName = "N", DefaultValueFactory = _ => 3, CustomParser = ValueParsers.Int("--eta", 2) };
    readonly Option<int> _minEpochs = new("--min-epochs") { Description = "halving: epochs of the first rung", HelpName = "N", DefaultValueFactory = _ => 1, CustomParser = ValueParsers.Int("--min-epochs", 1) };
    readonly Option<int> _maxEpochs = new("--max-epochs") { Description = "halving: most epochs a trial gets", HelpName = "N", DefaultValueFactory = _ => 9, CustomParser = ValueParsers.Int("--max-epochs", 1) };
    readonly Option<string> _metric = new Option<string>("--metric") { Description = "What ranks the trials on the validation data", DefaultValueFactory = _ => "accuracy" }
        .AcceptOnlyFromAmong("accuracy", "macro-accuracy", "log-loss");
    readonly Option<int> _batchSize = new("--batch-size") { Description = "Examples per training step", HelpName = "N", DefaultValueFactory = _ => 16, CustomParser = ValueParsers.Int("--batch-size", 1) };
    readonly Option<int?> _maxLength = new("--max-length") { Description = "Tokens per example [default: min(256, the model's positions)]", HelpName = "N", CustomParser = ValueParsers.OptionalInt("--max-length", 2) };
    readonly Option<int?> _maxRows = new("--max-rows") { Description = "Train on the first N rows of --data only", HelpName = "N", CustomParser = ValueParsers.OptionalInt("--max-rows", 1) };
    readonly Option<int?> _threads = new("--threads") { Description = "Threads libtorch may use", HelpName = "N", CustomParser = ValueParsers.OptionalInt("--threads", 1) };
    // --precision and --gradient-checkpointing as lora train defines them.
    readonly TrainingOptionSet _trainOptions = new();
    Option<string> _precision => _trainOptions.Precision;
    Option<bool> _checkpointing => _trainOptions.GradientCheckpointing;
    // --init, --loftq-*, --dora, --quantize, --double-quant as lora train defines them, for every trial.
    readonly LoraOptionSet _variants = new();
    readonly Option<bool> _dryRun = new("--dry-run") { Description = "Print the trials the sweep would run, and its rungs, without training" };

    public override string Name => "sweep";

    public override string Description =>
        "Search LoRA hyper-parameters (rank, alpha, learning rate, epochs, dropout, target layers) by grid, random " +
        "sampling or successive halving, ranked on validation data. Writes results.csv, results.json, each trial's " +
        "model and best-model.zip; running the same command again resumes and skips finished trials.";

    protected override void Configure(Command command)
    {
        command.Options.Add(_model);
        command.Options.Add(_offline);
        _data.AddTo(command);
        foreach (var o in new Option[] { _maxRows, _ranks, _alphas, _learningRates, _epochs, _dropouts }) command.Options.Add(o);
        foreach (var o in _switches.Values) command.Options.Add(o);
        _variants.AddVariantsTo(command);
        foreach (var o in new Option[] { _strategy, _budget, _eta, _minEpochs, _maxEpochs, _metric, _batchSize, _maxLength, _threads, _precision, _checkpointing,
            _trainOptions.Warmup, _trainOptions.WeightDecay, _trainOptions.MaxGradNorm, _trainOptions.LengthBucketing, _dryRun }) command.Options.Add(o);
        _output.AddTo(command, withOutputFolder: true);
        command.Validators.Add(result =>
        {
            if (result.GetResult(_data.Validation) is null && result.GetResult(_data.ValidationFraction) is null)
                result.AddError("A sweep ranks trials on validation data: give --validation FILE or --validation-fraction F.");
            if (result.GetResult(_budget) is not null && result.GetResult(_strategy)?.Tokens.FirstOrDefault()?.Value == "grid")
                result.AddError("--budget applies to --strategy random or halving.");
        });
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, CliContext context, CancellationToken cancellationToken)
    {
        var selection = _data.Read(parseResult);
        var baseOptions = ClassifierPipeline.Options(parseResult.GetValue(_model)!, selection.FileOptions.TextPairColumn is not null);
        baseOptions.BatchSize = parseResult.GetValue(_batchSize);
        baseOptions.MaxSequenceLength = parseResult.GetValue(_maxLength);
        baseOptions.Threads = parseResult.GetValue(_threads);
        baseOptions.Precision = TrainingOptionSet.ParsePrecision(parseResult.GetValue(_precision)!);
        baseOptions.GradientCheckpointing = parseResult.GetValue(_checkpointing);
        baseOptions.WarmupFraction = parseResult.GetValue(_trainOptions.Warmup);
        baseOptions.WeightDecay = parseResult.GetValue(_trainOptions.WeightDecay);
        baseOptions.MaxGradientNorm = parseResult.GetValue(_trainOptions.MaxGradNorm);
        baseOptions.LengthBucketing = parseResult.GetValue(_trainOptions.LengthBucketing);
        baseOptions.Seed = selection.Seed;
        _variants.ReadVariants(parseResult, baseOptions.Lora);
        if (parseResult.GetValue(_offline)) baseOptions.Hub = new HubOptions { Offline = true };
        var sweep = new SweepOptions
        {
            OutputFolder = parseResult.GetValue(_output.Output) ?? RunFolder.DefaultPath(Name),
            SearchSpace = SearchSpace(parseResult),
            Strategy = Strategy(parseResult),
            Metric = parseResult.GetValue(_metric) switch { "macro-accuracy" => SweepMetric.MacroAccuracy, "log-loss" => SweepMetric.LogLoss, _ => SweepMetric.Accuracy },
            Seed = selection.Seed,
        };
        sweep.Validate();

        if (parseResult.GetValue(_dryRun))
        {
            var candidates = sweep.Strategy.Candidates(sweep.SearchSpace, baseOptions, sweep.Seed);
            foreach (var rung in sweep.Strategy.PlanRungs(candidates.Count))
                context.Out.WriteLine($"rung {rung.Index}: {rung.Trials} trial(s)" + (rung.Epochs is int e ? $", {e} epoch(s) each" : ""));
            foreach (var c in candidates) context.Out.WriteLine(c.Id);
            return Task.FromResult(ExitCodes.Success);
        }

        var ml = new MLContext(seed: selection.Seed);
        var loaded = selection.Load(ml);
        var train = parseResult.GetValue(_maxRows) is int n ? ml.Data.TakeRows(loaded.Train, n) : loaded.Train;
        var progress = new Progress(context.Error);
        var result = SweepRunner.Run(ml, options => ClassifierPipeline.Build(ml, options), baseOptions, train, loaded.Validation!, sweep, progress, cancellationToken);

        if (parseResult.GetValue(_output.Json))
            JsonOutput.Write(context.Out, new
            {
                outputFolder = result.OutputFolder, metric = result.Metric.ToString(), best = result.Best, bestModel = result.BestModelPath,
                resultsCsv = result.ResultsCsvPath, resultsJson = result.ResultsJsonPath, trialsTrained = result.TrialsTrained, trialsResumed = result.TrialsResumed,
                trials = result.Trials,
            });
        else
        {
            context.Out.WriteLine(result.ToTable());
            context.Out.WriteLine($"Best: {result.Best.Id}; model {result.BestModelPath}");
            context.Out.WriteLine($"All trials: {result.ResultsCsvPath}, {result.ResultsJsonPath} ({result.TrialsTrained} trained now, {result.TrialsResumed} from an earlier run)");
        }
        return Task.FromResult(ExitCodes.Success);
    }

    LoraSearchSpace SearchSpace(ParseResult p)
    {
        SwitchChoice Choice(string name) => p.GetValue(_switches[name]) switch
        {
            "on" => SwitchChoice.On,
            "off" => SwitchChoice.Off,
            "both" => SwitchChoice.Both,
            _ => SwitchChoice.Inherit,
        };
        T[]? List<T>(Option<T[]?> option) => p.GetResult(option) is null ? null : p.GetValue(option);
        return new LoraSearchSpace
        {
            Ranks = List(_ranks), Alphas = List(_alphas), LearningRates = List(_learningRates),
            Epochs = List(_epochs), Dropouts = List(_dropouts),
            LoraQuery = Choice("query"), LoraKey = Choice("key"), LoraValue = Choice("value"),
            LoraProjection = Choice("projection"), LoraMlp = Choice("mlp"), LoraHead = Choice("head"),
        };
    }

    SweepStrategy Strategy(ParseResult p) => p.GetValue(_strategy) switch
    {
        "random" => SweepStrategy.Random(p.GetValue(_budget) ?? throw new CliUsageException("--strategy random needs --budget N.")),
        "halving" => SweepStrategy.SuccessiveHalving(p.GetValue(_eta), p.GetValue(_minEpochs), p.GetValue(_maxEpochs), p.GetValue(_budget)),
        _ => SweepStrategy.Grid(),
    };

    /// <summary>One line on stderr per trial event.</summary>
    sealed class Progress(TextWriter error) : IProgress<SweepProgress>
    {
        public void Report(SweepProgress p)
        {
            var where = $"[rung {p.Rung + 1}/{p.Rungs}, trial {p.TrialInRung}/{p.TrialsInRung}] {p.Trial.Id}";
            switch (p.Kind)
            {
                case SweepProgressKind.TrialStarted: error.WriteLine($"{where}: training"); break;
                case SweepProgressKind.TrialSkipped: error.WriteLine($"{where}: finished in an earlier run, skipped"); break;
                case SweepProgressKind.TrialFinished: error.WriteLine($"{where}: {p.Result?.Objective:F4} ({p.Result?.Duration.TotalSeconds:F1} s)"); break;
                case SweepProgressKind.TrialFailed: error.WriteLine($"{where}: failed: {p.Result?.Error}"); break;
            }
        }
    }
}
