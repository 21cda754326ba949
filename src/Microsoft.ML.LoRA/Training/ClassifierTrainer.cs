using System.Diagnostics;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tokenization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.LoRA.Training;

/// <summary>
/// The fine-tuning loop: AdamW over the trainable parameters only (no weight decay on biases and normalisation
/// parameters), linear warm-up then linear decay, gradient clipping and accumulation, dropout on in training only.
/// With a validation set it scores every epoch, stops early after <see cref="TrainingSettings.EarlyStoppingPatience"/>
/// epochs without improvement, and ends with the best epoch's weights. Cancellation stops between steps and still
/// leaves a usable model (the best or the last weights). A NaN or infinite loss stops training with
/// <see cref="TrainingDivergedException"/>.
/// </summary>
public sealed class ClassifierTrainer
{
    readonly SequenceClassifier _model;
    readonly TrainingSettings _settings;
    readonly int _padTokenId;
    readonly IProgress<TrainingProgress>? _progress;
    readonly Action<string>? _log;
    readonly string? _modelIdentity;
    readonly TrainingObjective _objective;

    /// <summary>
    /// Creates the trainer. <paramref name="modelIdentity"/> describes the model beyond its trainable parameters' names
    /// and shapes (base weights, fine-tuning method, LoRA settings) for the fingerprint of training checkpoints
    /// (<see cref="TrainingSettings.CheckpointDirectory"/>); <paramref name="objective"/> is what it minimises (default
    /// <see cref="TrainingObjective.Classification"/>).
    /// </summary>
    public ClassifierTrainer(SequenceClassifier model, TrainingSettings settings, int padTokenId,
        IProgress<TrainingProgress>? progress = null, Action<string>? log = null, string? modelIdentity = null,
        TrainingObjective? objective = null)
    {
        _objective = objective ?? TrainingObjective.Classification;
        settings.ValidateTraining();
        _model = model;
        _settings = settings;
        _padTokenId = padTokenId;
        _progress = progress;
        _log = log;
        _modelIdentity = modelIdentity;
    }

    /// <summary>Called after each training checkpoint is written: the optimizer step, the file's size in bytes and the time the write took.</summary>
    public Action<long, long, TimeSpan>? CheckpointWritten { get; set; }

    /// <summary>Runs the whole training. The model is left in eval mode with its final (best) weights.</summary>
    public TrainingHistory Train(IReadOnlyList<LabeledExample> train, IReadOnlyList<LabeledExample>? validation = null, CancellationToken cancellation = default)
    {
        if (train.Count == 0) throw new ArgumentException("The training set is empty.", nameof(train));
        CheckLabels(train, "training");
        if (validation is { Count: > 0 }) CheckLabels(validation, "validation");
        lock (TorchRandomLock.Sync)
        {
            try { return Run(train, validation is { Count: > 0 } ? validation : null, cancellation); }
            finally { _model.eval(); }
        }
    }

    TrainingHistory Run(IReadOnlyList<LabeledExample> train, IReadOnlyList<LabeledExample>? validation, CancellationToken cancellation)
    {
        var s = _settings;
        var trainable = _model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        if (trainable.Count == 0) throw new InvalidOperationException("The model has no trainable parameters (no adapter and no module to save).");
        using var optimizer = AdamWOptimizer.WithDecayOnWeights(trainable, _settings.WeightDecay, _settings.LearningRate);
        var parameters = trainable.Select(p => p.parameter).ToList();

        var random = new Random(s.Seed);
        var lengths = train.Select(e => e.Text.Length).ToArray();
        int batchesPerEpoch = (train.Count + s.BatchSize - 1) / s.BatchSize;
        long stepsPerEpoch = (batchesPerEpoch + s.GradientAccumulationSteps - 1) / s.GradientAccumulationSteps;
        long totalSteps = stepsPerEpoch * s.Epochs;
        var schedule = new LearningRateSchedule(s.LearningRate, totalSteps, (long)Math.Round(s.WarmupFraction * totalSteps));
        bool useTokenTypes = _model.UsesTokenTypes;

        var epochs = new List<EpochSummary>();
        Dictionary<string, Tensor>? best = null;
        double bestAccuracy = double.NegativeInfinity, bestLoss = double.PositiveInfinity;
        int bestEpoch = 0, sinceBest = 0;
        bool stoppedEarly = false, cancelled = false, finished = false;
        long step = 0;
        var stepLosses = new List<float>();
        double stepLossSum = 0;
        int stepLossCount = 0;
        var clock = Stopwatch.StartNew();
        double elapsedBefore = 0;
        long samplesSeen = 0;
        int firstEpoch = 1, firstBatch = 0;
        double resumedLossSum = 0;
        long resumedLossCount = 0;

        var checkpoints = s.CheckpointDirectory;
        var fingerprint = checkpoints is null ? null : CheckpointFingerprint.Of(s, _padTokenId, train, validation, trainable, _modelIdentity);
        bool firstStepCheckpoint = true;

        try
        {
            if (checkpoints is not null && s.ResumeFromCheckpoint)
            {
                var (state, file) = TrainingCheckpoint.Open(checkpoints, fingerprint!);
                best = TrainingCheckpoint.Restore(file, trainable, optimizer);
                optimizer.RestoreSteps(state.Step);
                (firstEpoch, firstBatch, step, samplesSeen) = (state.Epoch, state.NextBatch, state.Step, state.SamplesSeen);
                (resumedLossSum, resumedLossCount) = (state.EpochLossSum, state.EpochLossCount);
                epochs.AddRange(state.Epochs);
                stepLosses.AddRange(state.StepLosses);
                (bestEpoch, bestAccuracy, bestLoss, sinceBest, stoppedEarly, finished) =
                    (state.BestEpoch, state.BestAccuracy, state.BestLoss, state.SinceBest, state.StoppedEarly, state.Finished);
                elapsedBefore = state.ElapsedSeconds;
                // System.Random cannot be saved: replay the seeded shuffles of the epochs before the one in progress.
                for (int e = 1; e < Math.Min(firstEpoch, s.Epochs + 1); e++) BatchPlanner.TrainingBatches(lengths, s.BatchSize, random, s.LengthBucketing);
                _log?.Invoke(finished
                    ? $"Resuming from {TrainingCheckpoint.PathIn(checkpoints)}: training had finished (step {step})."
                    : $"Resuming from {TrainingCheckpoint.PathIn(checkpoints)} at epoch {firstEpoch}, batch {firstBatch + 1}, step {step} of {totalSteps}.");
            }

            void Checkpoint(int epoch, int nextBatch, double epochLossSum, long epochLossCount, bool done, string why)
            {
                if (checkpoints is null) return;
                var state = new CheckpointState
                {
                    Fingerprint = fingerprint, Epoch = epoch, NextBatch = nextBatch, Step = step, SamplesSeen = samplesSeen,
                    EpochLossSum = epochLossSum, EpochLossCount = epochLossCount, Epochs = epochs.ToList(), StepLosses = stepLosses.ToList(),
                    BestEpoch = bestEpoch, BestAccuracy = bestAccuracy, BestLoss = bestLoss, SinceBest = sinceBest,
                    StoppedEarly = stoppedEarly, Finished = done, ElapsedSeconds = elapsedBefore + clock.Elapsed.TotalSeconds,
                };
                var clock2 = Stopwatch.StartNew();
                long bytes = TrainingCheckpoint.Save(checkpoints, state, trainable, optimizer, best);
                CheckpointWritten?.Invoke(step, bytes, clock2.Elapsed);
                if (why != "step" || firstStepCheckpoint)
                    _log?.Invoke($"Checkpoint at step {step} ({why}): {bytes / 1048576.0:F1} MiB in {clock2.Elapsed.TotalMilliseconds:F0} ms.");
                if (why == "step") firstStepCheckpoint = false;
            }

            for (int epoch = firstEpoch; epoch <= s.Epochs && !cancelled && !finished; epoch++)
            {
                var epochClock = Stopwatch.StartNew();
                var batches = BatchPlanner.TrainingBatches(lengths, s.BatchSize, random, s.LengthBucketing);
                double lossSum = 0;
                long lossCount = 0;
                int startBatch = 0;
                if (epoch == firstEpoch)
                {
                    (lossSum, lossCount, startBatch) = (resumedLossSum, resumedLossCount, firstBatch);
                }
                _model.train();
                for (int b = startBatch; b < batches.Count; b++)
                {
                    if (cancellation.IsCancellationRequested)
                    {
                        cancelled = true;
                        if (b % s.GradientAccumulationSteps == 0 && b > startBatch) Checkpoint(epoch, b, lossSum, lossCount, false, "cancelled");
                        break;
                    }
                    var batch = batches[b];
                    double loss = ForwardBackward(train, batch, useTokenTypes, batches.Count, b);
                    if (!double.IsFinite(loss))
                        throw new TrainingDivergedException(
                            $"The training loss became {loss} at epoch {epoch}, batch {b + 1}. Lower the learning rate " +
                            $"(now {s.LearningRate}), keep gradient clipping on, or check the data; no model was produced.");
                    lossSum += loss * batch.Length;
                    lossCount += batch.Length;
                    samplesSeen += batch.Length;
                    stepLossSum += loss * batch.Length;
                    stepLossCount += batch.Length;

                    bool stepNow = (b + 1) % s.GradientAccumulationSteps == 0 || b == batches.Count - 1;
                    if (!stepNow) continue;
                    double lr = schedule.At(step);
                    optimizer.LearningRate = lr;
                    if (s.MaxGradientNorm > 0) GradientClipping.ClipByGlobalNorm(parameters, s.MaxGradientNorm);
                    optimizer.Step();
                    _model.zero_grad();
                    step++;
                    stepLosses.Add((float)(stepLossSum / stepLossCount));
                    stepLossSum = 0;
                    stepLossCount = 0;
                    Report(epoch, step, totalSteps, loss, lr, samplesSeen, TimeSpan.FromSeconds(elapsedBefore) + clock.Elapsed);
                    if (s.CheckpointEverySteps is int every && step % every == 0 && b < batches.Count - 1)
                        Checkpoint(epoch, b + 1, lossSum, lossCount, false, "step");
                }
                if (cancelled || lossCount == 0) break;   // a partial epoch is not summarised

                double trainLoss = lossSum / lossCount;
                double? validationLoss = null, validationAccuracy = null;
                if (validation is not null)
                {
                    var (vl, va) = Evaluate(validation);
                    validationLoss = vl;
                    validationAccuracy = _objective.HasAccuracy ? va : null;
                    if (!_objective.HasAccuracy) va = -vl;   // no accuracy: the lowest loss is best
                    bool improved = va > bestAccuracy || (va == bestAccuracy && vl < bestLoss);
                    if (improved)
                    {
                        bestAccuracy = va;
                        bestLoss = vl;
                        bestEpoch = epoch;
                        sinceBest = 0;
                        DisposeAll(best);
                        best = Snapshot(trainable);
                    }
                    else sinceBest++;
                }
                else bestEpoch = epoch;
                var summary = new EpochSummary(epoch, trainLoss, validationLoss, validationAccuracy, epochClock.Elapsed);
                epochs.Add(summary);
                _log?.Invoke(validation is null
                    ? $"Epoch {epoch}/{s.Epochs}: train loss {trainLoss:F4} ({epochClock.Elapsed.TotalSeconds:F1} s)"
                    : $"Epoch {epoch}/{s.Epochs}: train loss {trainLoss:F4}, validation loss {validationLoss:F4}{(validationAccuracy is { } a ? $", accuracy {a:P2}" : "")} ({epochClock.Elapsed.TotalSeconds:F1} s)");
                if (s.EarlyStoppingPatience is int patience && sinceBest >= patience && epoch < s.Epochs)
                {
                    stoppedEarly = true;
                    _log?.Invoke($"Stopping early: no better validation {(_objective.HasAccuracy ? "accuracy" : "loss")} for {patience} epoch(s); best was epoch {bestEpoch}.");
                }
                Checkpoint(epoch + 1, 0, 0, 0, stoppedEarly || epoch == s.Epochs, $"end of epoch {epoch}");
                if (stoppedEarly) break;
            }
            if (cancelled) _log?.Invoke(best is null ? "Training cancelled; keeping the last weights." : $"Training cancelled; restoring epoch {bestEpoch}'s weights.");
            if (best is not null) Restore(trainable, best);
            return new TrainingHistory(epochs, bestEpoch, stoppedEarly, cancelled, stepLosses, stepsPerEpoch);
        }
        finally
        {
            DisposeAll(best);
        }
    }

    double ForwardBackward(IReadOnlyList<LabeledExample> data, int[] batch, bool useTokenTypes, int batchCount, int batchIndex)
    {
        using var scope = torch.NewDisposeScope();
        var input = BatchCollator.Collate(batch.Select(i => data[i].Text).ToList(), _padTokenId, useTokenTypes);
        var logits = _model.forward(input);
        var loss = _objective.Loss(logits, data, batch);
        double value = loss.item<float>();
        if (!double.IsFinite(value)) return value;
        // Accumulated batches: scale so the summed gradient is the mean over the examples of the step.
        int accumulation = _settings.GradientAccumulationSteps;
        int groupStart = batchIndex / accumulation * accumulation;
        int groupSize = Math.Min(accumulation, batchCount - groupStart);
        if (groupSize > 1)
        {
            using Scalar divisor = groupSize;
            loss.div(divisor).backward();
        }
        else loss.backward();
        return value;
    }

    /// <summary>
    /// Mean loss (cross-entropy, or a regression objective's squared error) and accuracy (NaN for regression) of the
    /// model on labelled examples (eval mode, no gradients).
    /// </summary>
    public (double Loss, double Accuracy) Evaluate(IReadOnlyList<LabeledExample> examples)
    {
        if (examples.Count == 0) throw new ArgumentException("No examples to evaluate.", nameof(examples));
        bool wasTraining = _model.training;
        _model.eval();
        double lossSum = 0;
        long correct = 0;
        using (torch.no_grad())
        {
            foreach (var batch in BatchPlanner.InferenceBatches(examples.Select(e => e.Text.Length).ToArray(), _settings.InferenceBatchSize))
            {
                using var scope = torch.NewDisposeScope();
                var input = BatchCollator.Collate(batch.Select(i => examples[i].Text).ToList(), _padTokenId, _model.UsesTokenTypes);
                var logits = _model.forward(input);
                var (loss, right) = _objective.Sums(logits, examples, batch);
                lossSum += loss;
                correct += right;
            }
        }
        _model.train(wasTraining);
        return (lossSum / examples.Count, _objective.HasAccuracy ? (double)correct / examples.Count : double.NaN);
    }

    void Report(int epoch, long step, long totalSteps, double loss, double lr, long samplesSeen, TimeSpan elapsed) =>
        _progress?.Report(TrainingProgress.After(epoch, _settings.Epochs, step, totalSteps, loss, lr, samplesSeen, elapsed));

    void CheckLabels(IReadOnlyList<LabeledExample> examples, string what) => _objective.CheckLabels(examples, _model.NumLabels, what);

    static Dictionary<string, Tensor> Snapshot(List<(string name, Parameter parameter)> trainable)
    {
        using var _ = torch.no_grad();
        return TorchScopes.Keep(() => trainable.ToDictionary(p => p.name, p => p.parameter.detach().clone()));
    }

    static void Restore(List<(string name, Parameter parameter)> trainable, Dictionary<string, Tensor> snapshot)
    {
        using var _ = torch.no_grad();
        foreach (var (name, p) in trainable) p.copy_(snapshot[name]);
    }

    static void DisposeAll(Dictionary<string, Tensor>? tensors)
    {
        if (tensors is null) return;
        foreach (var t in tensors.Values) t.Dispose();
        tensors.Clear();
    }
}
