using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Training;

namespace Microsoft.ML.LoRA.MLNet;

/// <summary>The base checkpoint a fitted model was trained from, identified by the SHA-256 of its weights.</summary>
/// <param name="Source">What the user gave: a folder path or a Hub id.</param>
/// <param name="Folder">The local folder it resolved to.</param>
/// <param name="WeightsSha256">Combined SHA-256 of the weight files (see CheckpointFolder.ComputeWeightsSha256).</param>
/// <param name="ModelType">config.json's model_type.</param>
public sealed record BaseModelReference(string Source, string Folder, string WeightsSha256, string ModelType);

/// <summary>Everything about a fitted classifier besides its tensors: what it reads and writes, and how it was made.</summary>
public sealed class LoraModelInfo
{
    public required ClassifierTask Task { get; init; }
    public required string TextColumnName { get; init; }
    public string? TextPairColumnName { get; init; }
    public required string LabelColumnName { get; init; }
    public required string ScoreColumnName { get; init; }
    public required string PredictedLabelColumnName { get; init; }
    public required string ProbabilityColumnName { get; init; }
    public required LabelSet Labels { get; init; }
    public required LoraOptions Lora { get; init; }
    /// <summary>Which part of the model was trained; only <see cref="FineTuning.Lora"/> fits have a PEFT adapter.</summary>
    public FineTuning FineTuning { get; init; } = FineTuning.Lora;
    public required int MaxSequenceLength { get; init; }
    public required int InferenceBatchSize { get; init; }
    /// <summary>The number type of the linear layers' products when this model scores (and when it was trained).</summary>
    public ComputePrecision Precision { get; init; } = ComputePrecision.Float32;
    public required BaseModelReference BaseModel { get; init; }
    /// <summary>The tokenizer files of the base model folder, by file name.</summary>
    public required IReadOnlyDictionary<string, byte[]> TokenizerFiles { get; init; }
    /// <summary>The training run (null for a model loaded without its history).</summary>
    public TrainingHistory? History { get; init; }
}
