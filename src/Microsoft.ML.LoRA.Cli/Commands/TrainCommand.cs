using System.CommandLine;
using System.CommandLine.Parsing;
using Microsoft.ML;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Cli.Options;
using Microsoft.ML.LoRA.Cli.Reporting;
using Microsoft.ML.LoRA.Cli.Running;
using Microsoft.ML.LoRA.Hub;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Persistence;
using Spectre.Console;

namespace Microsoft.ML.LoRA.Cli.Commands;

// ML.NET has a namespace Microsoft.ML.Command, which would hide System.CommandLine.Command here.
using Command = System.CommandLine.Command;

/// <summary>
/// <c>lora train --model DIR|HUB-ID --data FILE ... --output RUN_DIR</c>: fine-tunes the model with LoRA on a labelled
/// text file and writes a run folder (model.zip, options.json, metrics.json, history.json, training.png, log.txt),
/// transactionally (<see cref="RunFolder"/>): a run that fails or is killed leaves the previous run's files as they
/// were, and <c>--resume RUN_DIR</c> continues it from its last training checkpoint.
/// Without --data it trains on SST-2 from ../shared (the first 20,000 rows, validated on its dev set).
/// </summary>
internal sealed class TrainCommand : CliCommand
{
    public const string DefaultModel = "google/bert_uncased_L-2_H-128_A-2";
    const int DefaultDataRows = 20000;

    readonly DataOptionSet _data = new();
    readonly LoraOptionSet _lora = new();
    readonly TrainingOptionSet _training = new();
    readonly OutputOptionSet _output = new();
    readonly TaskOptionSet _task = new();

    readonly Option<string> _model = new("--model", "-m")
    {
        Description = "Hugging Face model folder, or Hub id downloaded once into the Hugging Face cache",
        HelpName = "DIR|ID",
        DefaultValueFactory = _ => DefaultModel,
    };

    readonly Option<int?> _maxRows = new("--max-rows")
    {
        Description = "Train on the first N rows of --data only",
        HelpName = "N",
        CustomParser = ValueParsers.OptionalInt("--max-rows", min: 1),
    };

    readonly Option<FineTuning> _method = new("--method")
    {
        Description = "What trains: lora (adapters + head), head (the head only), last-layers:N (the head and the last N " +
                      "layers in full) or full (every weight; use a learning rate about 10x lower than LoRA's)",
        HelpName = "lora|head|last-layers:N|full",
        DefaultValueFactory = _ => FineTuning.Lora,
        CustomParser = result =>
        {
            var token = result.Tokens.Count > 0 ? result.Tokens[^1].Value : "";
            try { return FineTuning.Parse(token); }
            catch (FormatException e) { result.AddError($"--method: {e.Message}"); return FineTuning.Lora; }
        },
    };

    readonly Option<string?> _initAdapter = new("--init-adapter")
    {
        Description = "A PEFT adapter folder to start the LoRA factors from instead of fresh ones (for example the adapter " +
                      "'lora adapt --keep-adapter' wrote)",
        HelpName = "DIR",
    };

    readonly Option<string?> _resume = new("--resume")
    {
        Description = "Continue the unfinished (killed or failed) run in RUN_DIR from its last checkpoint, with the options it " +
                      "was started with; it ends as the uninterrupted run would have. Other options may only repeat the recorded ones",
        HelpName = "RUN_DIR",
    };

    readonly Option<int?> _checkpointEvery = new("--checkpoint-every")
    {
        Description = "Write a training checkpoint (for --resume) every N optimizer steps as well as at the end of each " +
                      "epoch; 0 writes none [default: at the end of each epoch]",
        HelpName = "N",
        CustomParser = ValueParsers.OptionalInt("--checkpoint-every", min: 0),
    };

    readonly Option<bool> _offline = new("--offline") { Description = "Never touch the network: use a local folder or the Hub cache only (as HF_HUB_OFFLINE=1)" };
    readonly Option<bool> _embedBase = new("--embed-base") { Description = "Put the base model's weights inside model.zip (self-contained file)" };
    readonly Option<bool> _merge = new("--merge-weights") { Description = "Store weights with the adapter merged in (self-contained; faster inference)" };

    public override string Name => "train";

    public override string Description =>
        "Fine-tune a Hugging Face text classifier with LoRA on a labelled TSV/CSV/JSONL file and write a run folder " +
        "with the model, options, metrics, per-epoch history, a chart and a log. Without --data, trains on SST-2 " +
        "from ../shared (first 20,000 rows, validated on dev.tsv).";

    protected override void Configure(Command command)
    {
        command.Options.Add(_model);
        command.Options.Add(_offline);
        _task.AddTo(command);
        _data.AddTo(command, dataRequired: false);
        command.Options.Add(_maxRows);
        command.Options.Add(_method);
        command.Options.Add(_initAdapter);
        _lora.AddTo(command);
        _training.AddTo(command);
        _output.AddTo(command, withOutputFolder: true);
        command.Options.Add(_embedBase);
        command.Options.Add(_merge);
        command.Options.Add(_checkpointEvery);
        command.Options.Add(_resume);
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, CliContext context, CancellationToken cancellationToken)
    {
        bool json = parseResult.GetValue(_output.Json);
        if (parseResult.GetValue(_resume) is { } resumeFolder) return Resume(parseResult, resumeFolder, json, context, cancellationToken);
        var arguments = parseResult.Tokens.Select(t => t.Value).ToList();
        return Train(parseResult, arguments, json, context, cancellationToken, resumeInto: null);
    }

    /// <summary>
    /// --resume RUN_DIR: parses the unfinished run's recorded arguments again (refusing options given now that differ
    /// from them) and trains from its checkpoint.
    /// </summary>
    Task<int> Resume(ParseResult parseResult, string folder, bool json, CliContext context, CancellationToken cancellationToken)
    {
        using var run = RunFolder.OpenForResume(folder, context.Error.WriteLine);
        if (run.Finished)
        {
            context.Error.WriteLine($"The run in {run.Path} had finished; its files are in place. Nothing to resume.");
            return Task.FromResult(ExitCodes.Success);
        }
        var record = run.ReadResumeRecord()
            ?? throw new CliUsageException($"--resume: {run.Path} holds no unfinished run (a finished run's files are in place, or none was started); start a new run without --resume.");
        if (!run.HasCheckpoint)
            throw new CliUsageException($"--resume: the unfinished run in {run.Path} stopped before its first checkpoint; start it again without --resume.");
        var recorded = parseResult.RootCommandResult.Command.Parse(record.Arguments.ToArray());
        if (recorded.Errors.Count > 0)
            throw new InvalidDataException($"{run.Staged(RunFolder.ResumeName)}: the recorded arguments no longer parse: {recorded.Errors[0].Message}");
        RefuseConflicts(parseResult, recorded, run);
        if (!string.Equals(Path.GetFullPath(record.WorkingDirectory), Path.GetFullPath(Environment.CurrentDirectory), StringComparison.Ordinal))
            context.Error.WriteLine($"Note: the run was started in {record.WorkingDirectory}; relative paths in its arguments are read from the current folder.");
        return Train(recorded, record.Arguments, json, context, cancellationToken, resumeInto: run);
    }

    /// <summary>Options given with --resume must say what the run was started with; --json may differ.</summary>
    void RefuseConflicts(ParseResult now, ParseResult recorded, RunFolder run)
    {
        static string Words(OptionResult? r) => r is null || r.Implicit ? "(not given)" : string.Join(" ", r.Tokens.Select(t => t.Value));
        foreach (var given in now.CommandResult.Children.OfType<OptionResult>().Where(r => !r.Implicit))
        {
            var option = given.Option;
            if (option == _resume || option == _output.Json) continue;
            if (option == _output.Output)
            {
                var output = now.GetValue(_output.Output);
                if (output is not null && Path.GetFullPath(output) == run.Path) continue;
            }
            var before = recorded.GetResult(option);
            if (Words(given) == Words(before)) continue;
            throw new CliUsageException($"--resume continues the run with the options it was started with ({run.Staged(RunFolder.ResumeName)}); " +
                $"{option.Name} {Words(given)} differs from them ({option.Name} {Words(before)}). Leave it out, or start a new run without --resume.");
        }
    }

    Task<int> Train(ParseResult parseResult, IReadOnlyList<string> arguments, bool json, CliContext context, CancellationToken cancellationToken, RunFolder? resumeInto)
    {
        var ml = new MLContext(seed: parseResult.GetValue(_data.Seed));
        using var log = new RunLog(ml, context.Error);
        int? maxRows = parseResult.GetValue(_maxRows);
        var selection = ReadData(parseResult, log, ref maxRows);
        var loaded = selection.Load(ml);
        var train = maxRows is int n ? ml.Data.TakeRows(loaded.Train, n) : loaded.Train;

        var options = ClassifierPipeline.Options(parseResult.GetValue(_model)!, loaded.Source.TextPairColumn is not null, _task.IsRegression(parseResult));
        _task.ApplyTo(parseResult, options);
        double? trainingMean = options is LoraTextRegressorOptions ? RegressionReport.CheckLabels(train, selection.DataPath).Mean : null;
        options.Lora = _lora.Read(parseResult, NoTargetsMeans.LibraryDefault);
        options.FineTuning = parseResult.GetValue(_method)!;
        options.InitialAdapterPath = parseResult.GetValue(_initAdapter);
        _training.ApplyTo(parseResult, options);
        options.Seed = selection.Seed;
        options.ValidationSet = loaded.Validation;
        options.CancellationToken = cancellationToken;
        if (parseResult.GetValue(_offline)) options.Hub = new HubOptions { Offline = true };
        ResolveModel(options);

        using var started = resumeInto is null ? RunFolder.StartNew(parseResult.GetValue(_output.Output) ?? RunFolder.DefaultPath(Name), log.Write) : null;
        var run = resumeInto ?? started!;
        int checkpointEvery = parseResult.GetValue(_checkpointEvery) ?? -1;
        options.CheckpointDirectory = checkpointEvery == 0 ? null : run.StagingPath;
        options.CheckpointEverySteps = checkpointEvery > 0 ? checkpointEvery : null;
        options.ResumeFromCheckpoint = resumeInto is not null;
        try
        {
            if (resumeInto is null)
            {
                run.WriteJson(run.Staged("options.json"), RunSettings.Describe(Environment.GetCommandLineArgs(), selection, maxRows, options, _task.IsRegression(parseResult)));
                run.WriteJson(run.Staged(RunFolder.ResumeName), new ResumeRecord(arguments, Environment.CurrentDirectory, DateTime.UtcNow));
                log.Write($"Training {options.ModelPath} on {selection.DataPath}; run folder {run.Path}");
            }
            else log.Write($"Resuming the training of {options.ModelPath} on {selection.DataPath} in {run.Path}");
            CrashPoint.Hit("start");
            var save = new LoraSaveOptions { EmbedBaseModel = parseResult.GetValue(_embedBase), MergeWeights = parseResult.GetValue(_merge) };
            return Task.FromResult(TrainAndCommit(ml, log, options, save, loaded, train, run, json, context, trainingMean));
        }
        catch
        {
            if (run.Abandon()) context.Error.WriteLine($"The run's last checkpoint is kept in {run.StagingPath}; 'lora train --resume {run.Path}' continues from it.");
            throw;
        }
    }

    int TrainAndCommit(MLContext ml, RunLog log, LoraTextClassifierOptions options, LoraSaveOptions save, LoadedData loaded, IDataView train,
        RunFolder run, bool json, CliContext context, double? trainingMean)
    {
        ITransformer model;
        var fitClock = System.Diagnostics.Stopwatch.StartNew();
        using (var progress = TrainingProgressDisplay.Create(context.ErrorConsole))
        {
            options.Progress = CrashPoint.AtSteps(progress);
            model = ClassifierPipeline.Build(ml, options).Fit(train);
        }
        fitClock.Stop();
        var lora = PipelineStages.LoraStage(model);
        try
        {
            ml.Model.SaveWithLora(model, train.Schema, run.Staged("model.zip"), save);
            CrashPoint.Hit("saved");
            var history = lora.TrainingHistory!;
            run.WriteJson(run.Staged("history.json"), history);
            if (history.Epochs.Count > 0) run.WriteChart(history);
            var evaluatedOn = loaded.Validation is null ? "training" : "validation";
            var counts = ParameterCounts.Of(lora.Model);
            if (trainingMean is { } mean)
                return RegressionRun.Finish(context, json, ml, model, run, log, history, loaded.Validation ?? train, evaluatedOn, mean,
                    new TrainingFigures(options.FineTuning.ToString(), counts.Trainable, counts.Total, fitClock.Elapsed.TotalSeconds, PeakMemory.PeakRssMiB()));
            var (evaluation, metrics) = EvaluationReport.Evaluate(ml, model, loaded.Validation ?? train, evaluatedOn);
            var figures = new TrainingFigures(options.FineTuning.ToString(), counts.Trainable, counts.Total, fitClock.Elapsed.TotalSeconds, PeakMemory.PeakRssMiB());
            var report = evaluation with { Training = figures };
            run.WriteJson(run.Staged("metrics.json"), report);
            log.Write($"Trained {figures.TrainableParameters:N0} of {figures.TotalParameters:N0} parameters in {figures.TrainingSeconds:F1} s; peak memory {figures.PeakRssMiB:F0} MiB.");
            log.Write($"Saved {run.ModelFile}; {evaluatedOn} accuracy {report.MicroAccuracy:P2} (macro {report.MacroAccuracy:P2}).");
            if (history.Cancelled) log.Write("Training was cancelled; the model holds the best (or last) weights reached.");
            AtomicFile.WriteAllText(run.Staged("log.txt"), string.Join(Environment.NewLine, log.Lines) + Environment.NewLine);
            run.Commit(CrashPoint.Hit);
            CrashPoint.Hit("committed");

            if (json)
                JsonOutput.Write(context.Out, new { runFolder = run.Path, model = run.ModelFile, metrics = report, history });
            else
                Results.Print(context.Console, report, metrics, $"Metrics on the {evaluatedOn} data");
            return history.Cancelled ? ExitCodes.Cancelled : ExitCodes.Success;
        }
        finally
        {
            lora.Dispose();
        }
    }

    /// <summary>Finds (or downloads) the base model before anything is written, with a hint for offline machines.</summary>
    static void ResolveModel(LoraTextClassifierOptions options)
    {
        try { ModelLocator.Resolve(options.ModelPath, options.Hub); }
        catch (HubException e) when (e.IsUnavailable || (options.Hub ?? new HubOptions()).ResolveOffline())
        {
            var local = SharedData.Find(Path.Combine("models", "bert-tiny-mlm-en"));
            var hint = local is not null
                ? $"--model {local} is a small pre-trained BERT of the default model's shape on this machine"
                : "'lora init-model --config CONFIG.json --tokenizer DIR --output DIR' writes a random-weight one";
            throw new HubException($"{e.Message} To train without network, pass --model with a local Hugging Face model folder ({hint}).",
                e.Url, e.StatusCode, e)
            { IsUnavailable = true };
        }
    }

    DataSelection ReadData(ParseResult parseResult, RunLog log, ref int? maxRows)
    {
        if (parseResult.GetResult(_data.Data) is not null) return _data.Read(parseResult);
        var sst2 = SharedData.Find(Path.Combine("data", "sst2"))
            ?? throw new CliUsageException("--data FILE is required (the default data set, SST-2 in ../shared/data/sst2, was not found).");
        maxRows ??= DefaultDataRows;
        log.Write($"No --data given: training on the first {maxRows:N0} rows of {Path.Combine(sst2, "train.tsv")}, validating on dev.tsv.");
        return _data.Read(parseResult, Path.Combine(sst2, "train.tsv"), Path.Combine(sst2, "dev.tsv"));
    }
}
