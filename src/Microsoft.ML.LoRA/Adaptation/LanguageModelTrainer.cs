using System.Diagnostics;
using Microsoft.ML.LoRA.Tokenization;
using Microsoft.ML.LoRA.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Adaptation;

/// <summary>What the training loop did: the mean loss of each epoch, the optimizer steps and the time spent.</summary>
internal sealed record LanguageModelTrainingHistory(IReadOnlyList<double> EpochLosses, long Steps, TimeSpan Duration);

/// <summary>
/// The language-model training loop, with the discipline of <see cref="ClassifierTrainer"/>: AdamW over the trainable
/// parameters only (no weight decay on biases and normalisation parameters), linear warm-up then linear decay,
/// gradient clipping, dropout in training only, a dispose scope per step (memory stays flat over long runs), a NaN
/// guard, and cancellation between steps. Masked LM draws new masks for every batch of every epoch; causal LM predicts
/// each next token. The caller holds <see cref="TorchRandomLock"/> and has seeded libtorch.
/// </summary>
internal sealed class LanguageModelTrainer
{
    readonly LanguageModel _model;
    readonly DomainAdaptationOptions _options;
    readonly int _padTokenId;
    readonly MaskedTokenSelection? _masking;
    readonly IProgress<TrainingProgress>? _progress;
    readonly Action<string>? _log;

    /// <param name="model">The model, its trainable parameters already chosen.</param>
    /// <param name="options">Epochs, batch size, learning rate and schedule, clipping, weight decay.</param>
    /// <param name="padTokenId">The id batches are padded with.</param>
    /// <param name="masking">The masking rule (masked LM); null for causal LM.</param>
    /// <param name="progress">Receives a report after every optimizer step.</param>
    /// <param name="log">Receives each epoch's summary.</param>
    public LanguageModelTrainer(LanguageModel model, DomainAdaptationOptions options, int padTokenId, MaskedTokenSelection? masking,
        IProgress<TrainingProgress>? progress = null, Action<string>? log = null)
    {
        if ((model.Objective == LanguageModelObjective.MaskedLanguageModel) != (masking is not null))
            throw new ArgumentException("masked-LM training needs a masking rule and causal-LM training none", nameof(masking));
        _model = model;
        _options = options;
        _padTokenId = padTokenId;
        _masking = masking;
        _progress = progress;
        _log = log;
    }

    /// <summary>Trains on <paramref name="texts"/>; batches and masks come from <paramref name="random"/>. Leaves the model in eval mode.</summary>
    /// <exception cref="OperationCanceledException">Cancelled between steps.</exception>
    /// <exception cref="TrainingDivergedException">The loss became NaN or infinite.</exception>
    public LanguageModelTrainingHistory Train(IReadOnlyList<EncodedText> texts, Random random, CancellationToken cancellation = default)
    {
        if (texts.Count == 0) throw new ArgumentException("There are no texts to train on.", nameof(texts));
        var trainable = _model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        if (trainable.Count == 0) throw new InvalidOperationException("The language model has no trainable parameters.");
        using var optimizer = AdamWOptimizer.WithDecayOnWeights(trainable, _options.WeightDecay, _options.EffectiveLearningRate);
        var parameters = trainable.Select(p => p.parameter).ToList();

        int epochs = _options.Epochs, batchSize = _options.BatchSize;
        var lengths = texts.Select(t => t.Length).ToArray();
        long totalSteps = (long)((texts.Count + batchSize - 1) / batchSize) * epochs;
        double peak = _options.EffectiveLearningRate;
        var schedule = new LearningRateSchedule(peak, totalSteps, (long)Math.Round(_options.WarmupFraction * totalSteps));
        var epochLosses = new List<double>();
        long step = 0, samples = 0;
        var clock = Stopwatch.StartNew();
        try
        {
            _model.train();
            for (int epoch = 1; epoch <= epochs; epoch++)
            {
                var epochClock = Stopwatch.StartNew();
                double lossSum = 0;
                long predicted = 0;
                foreach (var batch in BatchPlanner.TrainingBatches(lengths, batchSize, random, bucketByLength: true))
                {
                    cancellation.ThrowIfCancellationRequested();
                    var examples = batch.Select(i => texts[i]).ToList();
                    double lr = schedule.At(step);
                    var (loss, count) = Step(examples, random, optimizer, parameters, lr);
                    if (!double.IsFinite(loss))
                        throw new TrainingDivergedException(
                            $"The language-model loss became {loss} at epoch {epoch}, step {step + 1}. Lower the learning rate " +
                            $"(now {peak}), keep gradient clipping on, or check the texts; nothing was written.");
                    step++;
                    samples += batch.Length;
                    if (count == 0) continue;   // no token to predict in this batch (all masks missed, or one-token texts)
                    lossSum += loss * count;
                    predicted += count;
                    Report(epoch, step, totalSteps, loss, lr, samples, clock.Elapsed);
                }
                double epochLoss = predicted > 0 ? lossSum / predicted : double.NaN;
                epochLosses.Add(epochLoss);
                _log?.Invoke($"Epoch {epoch}/{epochs}: training loss {epochLoss:F4} ({epochClock.Elapsed.TotalSeconds:F1} s)");
            }
            return new LanguageModelTrainingHistory(epochLosses, step, clock.Elapsed);
        }
        finally
        {
            _model.eval();
            _model.zero_grad();
        }
    }

    /// <summary>One optimizer step on one batch, in its own dispose scope; returns the batch's loss and predicted tokens.</summary>
    (double Loss, int Count) Step(List<EncodedText> examples, Random random, AdamWOptimizer optimizer, List<Parameter> parameters, double lr)
    {
        using var scope = torch.NewDisposeScope();
        var batch = Build(examples, random);
        if (batch.Count == 0) return (0, 0);
        var loss = _model.Loss(batch.Input, batch.Positions, batch.Targets);
        double value = loss.item<float>();
        if (!double.IsFinite(value)) return (value, batch.Count);
        loss.backward();
        optimizer.LearningRate = lr;
        if (_options.MaxGradientNorm > 0) GradientClipping.ClipByGlobalNorm(parameters, _options.MaxGradientNorm);
        optimizer.Step();
        _model.zero_grad();
        return (value, batch.Count);
    }

    /// <summary>
    /// The mean loss per predicted token over <paramref name="texts"/> (eval mode, no gradients). Masks are drawn in
    /// text order from a generator seeded with <paramref name="maskSeed"/>, so two calls with the same seed predict the
    /// same tokens whatever the batch size; causal LM needs no masks.
    /// </summary>
    public double Evaluate(IReadOnlyList<EncodedText> texts, int maskSeed)
    {
        if (texts.Count == 0) throw new ArgumentException("There are no texts to measure the loss on.", nameof(texts));
        var random = new Random(maskSeed);
        var masked = _masking is null ? null : texts.Select(t => _masking.Apply(t.InputIds, random)).ToList();
        bool wasTraining = _model.training;
        _model.eval();
        double sum = 0;
        long count = 0;
        try
        {
            using var _ = torch.no_grad();
            foreach (var batch in BatchPlanner.InferenceBatches(texts.Select(t => t.Length).ToArray(), _options.InferenceBatchSize))
            {
                using var scope = torch.NewDisposeScope();
                var examples = batch.Select(i => texts[i]).ToList();
                var built = masked is null
                    ? LanguageModelBatch.Causal(examples, _padTokenId, _model.UsesTokenTypes)
                    : LanguageModelBatch.Masked(examples, batch.Select(i => masked[i]).ToList(), _padTokenId, _model.UsesTokenTypes);
                if (built.Count == 0) continue;
                sum += _model.Loss(built.Input, built.Positions, built.Targets, sum: true).item<float>();
                count += built.Count;
            }
        }
        finally
        {
            _model.train(wasTraining);
        }
        return count > 0 ? sum / count : double.NaN;
    }

    LanguageModelBatch Build(List<EncodedText> examples, Random random) => _masking is null
        ? LanguageModelBatch.Causal(examples, _padTokenId, _model.UsesTokenTypes)
        : LanguageModelBatch.Masked(examples, examples.Select(e => _masking.Apply(e.InputIds, random)).ToList(), _padTokenId, _model.UsesTokenTypes);

    void Report(int epoch, long step, long totalSteps, double loss, double lr, long samples, TimeSpan elapsed) =>
        _progress?.Report(TrainingProgress.After(epoch, _options.Epochs, step, totalSteps, loss, lr, samples, elapsed));
}
