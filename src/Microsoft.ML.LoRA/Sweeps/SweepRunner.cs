using System.Diagnostics;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.LoRA.Training;

namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>
/// Runs a hyper-parameter sweep: trains one pipeline per configuration chosen by the strategy, scores each on the
/// validation data with ML.NET's evaluators, and keeps every trial's model and result in the output folder. A sweep
/// stopped midway (cancellation, crash, kill) resumes when run again on the same folder: finished trials are read back
/// from trials.jsonl and not retrained, and the final results are the same as those of an uninterrupted run.
/// See docs/sweeps.md.
/// </summary>
public static class SweepRunner
{
    /// <summary>
    /// Runs (or resumes) the sweep described by <paramref name="options"/>.
    /// </summary>
    /// <param name="mlContext">Evaluates and saves the trials; messages go to its Log event.</param>
    /// <param name="pipelineFactory">
    /// Builds one trial's pipeline from its options, e.g.
    /// <c>o =&gt; ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(o))</c>
    /// (see <see cref="SweepPipelines"/>). It must contain exactly one LoRA classifier built from the options it is given.
    /// </param>
    /// <param name="baseOptions">Options every trial starts from (model, columns, batch size, seed ...); not modified.</param>
    /// <param name="train">Training data, in the schema the pipeline expects.</param>
    /// <param name="validation">Data the trials are ranked on; it needs the label column (raw, as in <paramref name="train"/>).</param>
    /// <param name="options">Search space, strategy, metric, seed and output folder.</param>
    /// <param name="progress">Receives a report when a trial starts, at every training step, and when a trial finishes or is skipped, on the sweep's thread.</param>
    /// <param name="cancellationToken">
    /// Stops the sweep: between trials, or between training steps of a running trial (that trial is then discarded).
    /// Throws <see cref="OperationCanceledException"/>; finished trials stay in the folder for the next run.
    /// </param>
    /// <returns>The ranked trials, the best one and the paths of results.csv, results.json, best-model.zip and best.json.</returns>
    /// <exception cref="ArgumentException">The options, search space, data or metric do not fit (checked before any training).</exception>
    /// <exception cref="InvalidOperationException">The folder holds a sweep with other settings, the factory ignored its options, or every trial diverged.</exception>
    public static SweepResult Run(
        MLContext mlContext,
        Func<LoraTextClassifierOptions, IEstimator<ITransformer>> pipelineFactory,
        LoraTextClassifierOptions baseOptions,
        IDataView train,
        IDataView validation,
        SweepOptions options,
        IProgress<SweepProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(pipelineFactory);
        ArgumentNullException.ThrowIfNull(baseOptions);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(validation);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        baseOptions.Validate();
        var metric = options.Metric;
        var strategy = options.Strategy;
        var candidates = strategy.Candidates(options.SearchSpace, baseOptions, options.Seed);
        var rungs = strategy.PlanRungs(candidates.Count);
        foreach (var candidate in candidates) CheckTrialOptions(candidate, baseOptions);
        var facts = SweepPreflight.Check(pipelineFactory, baseOptions, train, validation, metric);

        var folder = new SweepFolder(options.OutputFolder);
        SweepManifest.CreateOrCheck(folder, SweepManifest.Settings(baseOptions, facts.TrainRows, facts.ValidationRows), options);
        var journal = TrialJournal.Open(folder.Journal);
        using var log = new MLContextLog(mlContext, "LoraSweep");
        if (journal.DroppedPartialLine) log.Warning($"Removed a partly written last line from {folder.Journal}; that trial trains again.");
        var finished = new Dictionary<string, TrialRecord>(StringComparer.Ordinal);
        foreach (var record in journal.Records) finished[record.Id] = record;
        log.Info($"Sweep in {folder.Root}: {strategy}, {candidates.Count} configuration(s), {rungs.Count} rung(s), ranked by {metric}; {finished.Count} trial(s) finished earlier.");

        var all = new List<TrialResult>();
        TrialResult? bestSoFar = null;
        List<TrialResult>? previousRung = null;
        int sequence = 0;
        foreach (var rung in rungs)
        {
            IReadOnlyList<TrialConfiguration> configurations = previousRung is null ? candidates
                : TrialRanking.Rank(previousRung, metric).Where(t => t.Status == TrialStatus.Succeeded).Take(rung.Trials).Select(t => t.Configuration).ToList();
            if (rung.Epochs is int epochs) configurations = configurations.Select(c => c.WithEpochs(epochs)).ToList();
            if (configurations.Count == 0) break;   // every trial of the previous rung failed

            var rungResults = new List<TrialResult>();
            for (int i = 0; i < configurations.Count; i++)
            {
                var configuration = configurations[i];
                SweepProgress Report(SweepProgressKind kind, TrialResult? result = null, TrainingProgress? training = null) =>
                    new(kind, configuration, rung.Index, rungs.Count, i + 1, configurations.Count, result, training, bestSoFar);
                TrialResult trial;
                if (finished.TryGetValue(configuration.Id, out var record) && IsComplete(record, folder))
                {
                    trial = record.ToResult(configuration, sequence, rung.Index, metric, folder);
                    all.Add(trial);
                    bestSoFar = TrialRanking.Rank(all, metric).FirstOrDefault(t => t.Status == TrialStatus.Succeeded);
                    progress?.Report(Report(SweepProgressKind.TrialSkipped, trial));
                }
                else
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    progress?.Report(Report(SweepProgressKind.TrialStarted));
                    trial = Train(mlContext, pipelineFactory, baseOptions, configuration, sequence, rung.Index, train, validation, facts.Task, metric, folder,
                        step => progress?.Report(Report(SweepProgressKind.TrainingStep, training: step)), cancellationToken);
                    journal.Append(TrialRecord.From(trial, metric, folder));
                    all.Add(trial);
                    var rankedSoFar = TrialRanking.Rank(all, metric);
                    bestSoFar = rankedSoFar.FirstOrDefault(t => t.Status == TrialStatus.Succeeded);
                    SweepResultFiles.WriteResults(folder, rankedSoFar, metric, strategy);
                    log.Info(trial.Status == TrialStatus.Succeeded
                        ? $"Trial {configuration.Id} (rung {rung.Index}, {i + 1}/{configurations.Count}): {metric} {trial.Objective:G5} in {trial.Duration.TotalSeconds:F1} s."
                        : $"Trial {configuration.Id} failed: {trial.Error}");
                    progress?.Report(Report(trial.Status == TrialStatus.Succeeded ? SweepProgressKind.TrialFinished : SweepProgressKind.TrialFailed, trial));
                }
                sequence++;
                rungResults.Add(trial);
            }
            previousRung = rungResults;
        }

        var ranked = TrialRanking.Rank(all, metric);
        SweepResultFiles.WriteResults(folder, ranked, metric, strategy);
        var best = ranked.FirstOrDefault(t => t.Status == TrialStatus.Succeeded) ?? throw new InvalidOperationException(
            $"No trial succeeded: all {all.Count} diverged (see {folder.ResultsCsv}). Lower the learning rates or keep gradient clipping on.");
        SweepResultFiles.WriteBest(folder, best, metric);
        log.Info($"Best trial: {best.Id}, {metric} {best.Objective:G5}; model at {folder.BestModel}.");
        return new SweepResult
        {
            Metric = metric,
            Trials = ranked,
            Best = best,
            OutputFolder = folder.Root,
            ResultsCsvPath = folder.ResultsCsv,
            ResultsJsonPath = folder.ResultsJson,
            BestModelPath = folder.BestModel,
            BestJsonPath = folder.BestJson,
            TrialsJournalPath = folder.Journal,
        };
    }

    /// <summary>A journal record counts as finished when it failed (nothing to keep) or its model file is still there.</summary>
    static bool IsComplete(TrialRecord record, SweepFolder folder) =>
        record.Status == TrialStatus.Failed || (record.Model is not null && File.Exists(folder.Full(record.Model)));

    static void CheckTrialOptions(TrialConfiguration configuration, LoraTextClassifierOptions baseOptions)
    {
        try { configuration.ToOptions(baseOptions).Validate(); }
        catch (ArgumentException e) { throw new ArgumentException($"Trial {configuration.Id} would have invalid options: {e.Message}", nameof(baseOptions), e); }
    }

    static TrialResult Train(MLContext ml, Func<LoraTextClassifierOptions, IEstimator<ITransformer>> pipelineFactory, LoraTextClassifierOptions baseOptions,
        TrialConfiguration configuration, int sequence, int rung, IDataView train, IDataView validation, ClassifierTask task, SweepMetric metric,
        SweepFolder folder, Action<TrainingProgress> onStep, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var options = configuration.ToOptions(baseOptions);
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, baseOptions.CancellationToken);
        options.CancellationToken = cancellation.Token;
        var userProgress = baseOptions.Progress;
        options.Progress = new ForwardingProgress<TrainingProgress>(step =>
        {
            userProgress?.Report(step);
            onStep(step);
        });
        var estimator = pipelineFactory(options) ?? throw new ArgumentException("The pipeline factory returned null.", nameof(pipelineFactory));

        ITransformer model;
        try { model = estimator.Fit(train); }
        catch (TrainingDivergedException e)
        {
            return new TrialResult
            {
                Configuration = configuration, Sequence = sequence, Rung = rung, Status = TrialStatus.Failed, Objective = double.NaN,
                Duration = clock.Elapsed, Error = e.Message, FinishedAt = DateTimeOffset.UtcNow,
            };
        }
        try
        {
            cancellation.Token.ThrowIfCancellationRequested();   // stopped mid-training: the model is partial, do not record it
            var lora = PipelineStages.Flatten(model).OfType<LoraTextClassificationTransformer>().ToList();
            if (lora.Count != 1)
                throw new InvalidOperationException($"The pipeline must contain exactly one LoRA text classifier; the fitted pipeline has {lora.Count}.");
            CheckOptionsWereUsed(lora[0], options, configuration);
            TrialMetrics metrics;
            try { metrics = TrialMetrics.Evaluate(ml, PipelineStages.TransformThroughLoraStage(model, validation), task, baseOptions); }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                throw new InvalidOperationException($"ML.NET could not evaluate trial {configuration.Id} on the validation data: {e.Message}", e);
            }
            var path = folder.TrialModel(configuration.Id);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            ml.Model.SaveWithLora(model, train.Schema, path);
            var history = lora[0].TrainingHistory;
            return new TrialResult
            {
                Configuration = configuration, Sequence = sequence, Rung = rung, Status = TrialStatus.Succeeded,
                Metrics = metrics, Objective = metrics.Get(metric),
                EpochsTrained = history?.Epochs.Count ?? 0, BestEpoch = history?.BestEpoch ?? 0,
                Duration = clock.Elapsed, ModelPath = path, FinishedAt = DateTimeOffset.UtcNow,
            };
        }
        finally
        {
            foreach (var stage in PipelineStages.Flatten(model).OfType<IDisposable>()) stage.Dispose();
        }
    }

    /// <summary>Catches a factory that builds its classifier from other options than the trial's (the sweep would silently train one configuration).</summary>
    static void CheckOptionsWereUsed(LoraTextClassificationTransformer classifier, LoraTextClassifierOptions asked, TrialConfiguration configuration)
    {
        var used = classifier.Info.Lora;
        int epochs = classifier.TrainingHistory?.Epochs.Count ?? 0;
        bool same = used.Rank == asked.Lora.Rank && used.Alpha.Equals(asked.Lora.Alpha) && used.Dropout.Equals(asked.Lora.Dropout)
            && LoraTargetSwitches.EffectiveOf(used) == LoraTargetSwitches.EffectiveOf(asked.Lora) && epochs <= asked.Epochs;
        if (!same)
            throw new InvalidOperationException(
                $"The pipeline factory did not build its LoRA classifier from the options it was given: trial {configuration.Id} asked for rank {asked.Lora.Rank}, " +
                $"alpha {asked.Lora.Alpha}, dropout {asked.Lora.Dropout}, at most {asked.Epochs} epoch(s), but the fitted classifier has rank {used.Rank}, " +
                $"alpha {used.Alpha}, dropout {used.Dropout} and trained {epochs} epoch(s). Pass the factory's argument to LoraTextClassifier(options).");
    }

    sealed class ForwardingProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
