using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Hub;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.LoRA.Tokenization;
using Microsoft.ML.LoRA.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Adaptation;

/// <summary>
/// Domain adaptation: continued language-model pre-training of a checkpoint on unlabelled text of the domain, before
/// fine-tuning it as usual. BERT, DistilBERT and RoBERTa learn by masked-language modelling through their own
/// Hugging Face masked-LM head (loaded from the checkpoint, or created when it has none), GPT-2 by next-token
/// prediction; with LoRA (default) or in full. The result is a Hugging Face folder that the classifier (and
/// <c>lora train --model</c>) takes as its base model.
/// </summary>
/// <example>
/// <code>
/// var result = DomainAdaptation.Run(new DomainAdaptationOptions
/// {
///     ModelPath = "models/bert-base", OutputPath = "models/bert-base-clinical", Epochs = 2, ValidationFraction = 0.1,
/// }, File.ReadLines("notes.txt"));
/// Console.WriteLine($"held-out loss {result.ValidationLossBefore:F3} -> {result.ValidationLossAfter:F3}");
/// </code>
/// </example>
public static class DomainAdaptation
{
    /// <summary>Training texts the initial and final losses are measured on.</summary>
    public const int LossSampleSize = 512;

    /// <summary>
    /// Adapts <see cref="DomainAdaptationOptions.ModelPath"/> to <paramref name="texts"/> and writes the adapted checkpoint to
    /// <see cref="DomainAdaptationOptions.OutputPath"/>. Blank texts are left out. The run holds
    /// <see cref="TorchRandomLock"/> from seeding to the end: the same seed and texts give the same weights.
    /// </summary>
    /// <param name="options">What to adapt, where to write it, and how.</param>
    /// <param name="texts">The domain's texts, one example each (longer ones are truncated to the maximum length).</param>
    /// <param name="progress">Receives a report after every optimizer step.</param>
    /// <param name="cancellationToken">Stops between steps; nothing is written then.</param>
    /// <returns>The run's figures (also written to adapt.json).</returns>
    /// <exception cref="ArgumentException">An option is out of range or the LoRA targets match nothing.</exception>
    /// <exception cref="InvalidDataException">There is no text to adapt on.</exception>
    /// <exception cref="IOException">The output folder is not empty and <see cref="DomainAdaptationOptions.Overwrite"/> is false.</exception>
    /// <exception cref="CheckpointFormatException">The checkpoint or its tokenizer cannot be used.</exception>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    /// <exception cref="TrainingDivergedException">The loss became NaN or infinite.</exception>
    public static DomainAdaptationResult Run(DomainAdaptationOptions options, IEnumerable<string?> texts,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(texts);
        options.Validate();
        AdaptedCheckpoint.CheckWritable(options.OutputPath, options.Overwrite);
        var clock = Stopwatch.StartNew();
        var log = options.Log;

        var folder = CheckpointFolder.Open(ModelLocator.Resolve(options.ModelPath, options.Hub, cancellationToken));
        var config = folder.Config;
        int maxLength = options.MaxSequenceLength ?? Math.Min(DomainAdaptationOptions.DefaultMaxSequenceLength, TextEncoders.ModelMaxLength(config));
        var encoder = TextEncoders.FromFolder(folder.Directory, config, maxLength);
        bool masked = LanguageModelFactory.ObjectiveOf(config) == LanguageModelObjective.MaskedLanguageModel;
        MaskedTokenSelection? masking = null;
        if (masked)
        {
            int mask = encoder.MaskTokenId ?? throw new CheckpointFormatException(folder.Directory,
                $"the {config.ModelType} tokenizer has no mask token (mask_token), which masked-language modelling needs");
            masking = new MaskedTokenSelection(options.MaskProbability, mask, config.VocabSize, encoder.SpecialTokenIds);
        }

        int skipped = 0;
        var encoded = new List<EncodedText>();
        foreach (var text in texts)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (string.IsNullOrWhiteSpace(text)) { skipped++; continue; }
            encoded.Add(encoder.Encode(text));
        }
        if (encoded.Count == 0)
            throw new InvalidDataException($"There is no text to adapt on ({(skipped > 0 ? $"all {skipped} rows are blank" : "no rows")}).");
        if (skipped > 0) log?.Invoke($"Left out {skipped} blank text(s).");
        var (train, validation) = Split(encoded, options.ValidationFraction, options.Seed);
        if (validation.Count > 0) log?.Invoke($"Held out {validation.Count} of {encoded.Count} texts to measure the loss.");

        if (options.Threads is int threads) torch.set_num_threads(threads);
        lock (TorchRandomLock.Sync)
        {
            torch.manual_seed(options.Seed);
            var (model, loaded) = LanguageModelCheckpoint.Load(folder, log);
            var originals = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            try
            {
                LoraInjectionReport? injection = null;
                if (options.Method == AdaptationMethod.Lora)
                {
                    injection = LanguageModelLora.Apply(model, options.Lora);
                    if (options.KeepAdapter) originals = TrainedBaseTensors(model);
                }
                var counts = ParameterCounts.Of(model);
                string objective = masked ? "masked-language-model" : "causal-language-model";
                log?.Invoke(injection is null
                    ? $"Full {objective} adaptation of {folder.Directory} ({model.Architecture}); training all {counts.Total:N0} parameters."
                    : $"LoRA {objective} adaptation of {folder.Directory} ({model.Architecture}) on {injection.AdaptedModules.Count} layers; " +
                      $"training {counts.Trainable:N0} of {counts.Total:N0} parameters ({counts.TrainablePercent:F2}%).");

                var trainer = new LanguageModelTrainer(model, options, encoder.PadTokenId, masking, progress, log);
                int lossSeed = unchecked(options.Seed * 7919 + 17);
                var sample = train.Take(LossSampleSize).ToList();
                double initial = trainer.Evaluate(sample, lossSeed);
                double? validationBefore = validation.Count > 0 ? trainer.Evaluate(validation, lossSeed) : null;
                if (validationBefore is double vb) log?.Invoke($"Held-out loss before adaptation: {vb:F4} (perplexity {Math.Exp(vb):F1}).");

                var history = trainer.Train(train, new Random(options.Seed), cancellationToken);

                double final = trainer.Evaluate(sample, lossSeed);
                double? validationAfter = validation.Count > 0 ? trainer.Evaluate(validation, lossSeed) : null;
                log?.Invoke($"Loss on {sample.Count} training texts: {initial:F4} before, {final:F4} after.");
                if (validationAfter is double va) log?.Invoke($"Held-out loss after adaptation: {va:F4} (perplexity {Math.Exp(va):F1}).");

                var result = new DomainAdaptationResult
                {
                    OutputPath = Path.GetFullPath(options.OutputPath),
                    Model = options.ModelPath,
                    ModelType = config.ModelType,
                    Architecture = model.Architecture,
                    Objective = model.Objective,
                    Method = options.Method,
                    KeptAdapter = options.KeepAdapter,
                    Rows = train.Count,
                    ValidationRows = validation.Count,
                    SkippedRows = skipped,
                    Epochs = options.Epochs,
                    Steps = history.Steps,
                    LearningRate = options.EffectiveLearningRate,
                    BatchSize = options.BatchSize,
                    MaxSequenceLength = encoder.MaxLength,
                    MaskProbability = masked ? options.MaskProbability : null,
                    Seed = options.Seed,
                    AdaptedModules = injection?.AdaptedModules ?? Array.Empty<string>(),
                    TrainableParameters = counts.Trainable,
                    TotalParameters = counts.Total,
                    CreatedHead = loaded.CreatedHead,
                    LossSampleRows = sample.Count,
                    InitialLoss = initial,
                    FinalLoss = final,
                    EpochLosses = history.EpochLosses,
                    ValidationLossBefore = validationBefore,
                    ValidationLossAfter = validationAfter,
                    ValidationPerplexityBefore = validationBefore is double b ? Math.Exp(b) : null,
                    ValidationPerplexityAfter = validationAfter is double a ? Math.Exp(a) : null,
                    TrainingSeconds = history.Duration.TotalSeconds,
                };
                Write(model, folder, options, injection, originals, ref result, clock);
                log?.Invoke($"Wrote the adapted checkpoint to {result.OutputPath} ({result.Seconds:F1} s).");
                return result;
            }
            finally
            {
                foreach (var t in originals.Values) t.Dispose();
                model.Dispose();
            }
        }
    }

    static void Write(LanguageModel model, CheckpointFolder folder, DomainAdaptationOptions options, LoraInjectionReport? injection,
        Dictionary<string, Tensor> originals, ref DomainAdaptationResult result, Stopwatch clock)
    {
        bool keep = options.KeepAdapter;
        var tensors = keep ? BaseTensors(model, originals) : MergedCheckpoint.MergedTensors(model);
        var written = result;
        try
        {
            AdaptedCheckpoint.Write(options.OutputPath, options.Overwrite, folder, model.Architecture, tensors, temp =>
            {
                if (keep) AdaptationAdapter.Save(model, options.Lora, injection!.AdaptedModules, Path.Combine(temp, AdaptedCheckpoint.AdapterFolder), options.ModelPath);
                written = written with { Seconds = clock.Elapsed.TotalSeconds };
                AtomicFile.WriteAllText(Path.Combine(temp, AdaptedCheckpoint.ReportFile), JsonSerializer.Serialize(written, ReportJson) + Environment.NewLine);
            });
        }
        finally
        {
            if (!keep) foreach (var t in tensors.Values) t.Dispose();
        }
        result = written;
    }

    static readonly JsonSerializerOptions ReportJson = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, WriteIndented = true };

    /// <summary>The base and head weights without the adapters, trained base modules at their values before training (a PEFT adapter holds the trained ones).</summary>
    static Dictionary<string, Tensor> BaseTensors(LanguageModel model, Dictionary<string, Tensor> originals) =>
        model.named_parameters()
            .Where(p => !LoraLinear.IsAdapterParameter(p.name))
            .ToDictionary(p => p.name, p => originals.TryGetValue(p.name, out var original) ? original : (Tensor)p.parameter, StringComparer.Ordinal);

    /// <summary>Copies of the base parameters that train besides the adapters (modules to save, biases), before training.</summary>
    static Dictionary<string, Tensor> TrainedBaseTensors(LanguageModel model)
    {
        using var _ = torch.no_grad();
        return TorchScopes.Keep(() => model.named_parameters()
            .Where(p => p.parameter.requires_grad && !LoraLinear.IsAdapterParameter(p.name))
            .ToDictionary(p => p.name, p => p.parameter.detach().clone(), StringComparer.Ordinal));
    }

    /// <summary>A seeded split: <paramref name="fraction"/> of the texts (at least one, leaving at least one) held out, the rest in file order.</summary>
    internal static (List<EncodedText> Train, List<EncodedText> Validation) Split(List<EncodedText> texts, double fraction, int seed)
    {
        if (fraction <= 0 || texts.Count < 2) return (texts, new List<EncodedText>());
        int held = Math.Clamp((int)Math.Round(fraction * texts.Count), 1, texts.Count - 1);
        var order = Enumerable.Range(0, texts.Count).ToArray();
        new Random(seed).Shuffle(order);
        var validationIndices = order.Take(held).ToHashSet();
        var train = new List<EncodedText>(texts.Count - held);
        var validation = new List<EncodedText>(held);
        for (int i = 0; i < texts.Count; i++) (validationIndices.Contains(i) ? validation : train).Add(texts[i]);
        return (train, validation);
    }
}
