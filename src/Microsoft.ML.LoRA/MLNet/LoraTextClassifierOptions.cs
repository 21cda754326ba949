using System.Text.Json.Serialization;
using Microsoft.ML;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Training;

namespace Microsoft.ML.LoRA.MLNet;

/// <summary>
/// Options of <see cref="LoraTextClassificationEstimator"/>: which columns to read, which Hugging Face checkpoint to
/// start from, the LoRA settings (<see cref="Lora"/>) and the training hyper-parameters (inherited from
/// <see cref="TrainingSettings"/>: epochs, batch size, learning rate, warm-up, weight decay, gradient clipping and
/// accumulation, seed, early-stopping patience, inference batch size, length bucketing). Every property has a
/// sensible default except <see cref="ModelPath"/>.
/// </summary>
public class LoraTextClassifierOptions : TrainingSettings
{
    /// <summary>The label column: a key type for multiclass (use <c>MapValueToKey</c>), Boolean for binary. Default "Label".</summary>
    public string LabelColumnName { get; set; } = "Label";

    /// <summary>The text column (string). Default "Text".</summary>
    public string TextColumnName { get; set; } = "Text";

    /// <summary>Optional second text column, for sentence-pair tasks (entailment, paraphrase). Default none.</summary>
    public string? TextPairColumnName { get; set; }

    /// <summary>Output column with the class probabilities (multiclass) or raw score (binary). Default "Score".</summary>
    public string ScoreColumnName { get; set; } = "Score";

    /// <summary>Output column with the predicted class. Default "PredictedLabel".</summary>
    public string PredictedLabelColumnName { get; set; } = "PredictedLabel";

    /// <summary>Binary only: output column with the positive-class probability. Default "Probability".</summary>
    public string ProbabilityColumnName { get; set; } = "Probability";

    /// <summary>
    /// The name ML.NET's <c>TextClassificationTrainer</c> gives <see cref="TextColumnName"/>; setting one sets the other,
    /// so options written for that trainer carry over.
    /// </summary>
    [SettingAlias(nameof(TextColumnName)), JsonIgnore]
    public string Sentence1ColumnName { get => TextColumnName; set => TextColumnName = value; }

    /// <summary>ML.NET's <c>TextClassificationTrainer</c> name for <see cref="TextPairColumnName"/> (the same setting).</summary>
    [SettingAlias(nameof(TextPairColumnName)), JsonIgnore]
    public string? Sentence2ColumnName { get => TextPairColumnName; set => TextPairColumnName = value; }

    /// <summary>ML.NET's <c>TextClassificationTrainer</c> name for <see cref="PredictedLabelColumnName"/> (the same setting).</summary>
    [SettingAlias(nameof(PredictedLabelColumnName)), JsonIgnore]
    public string PredictionColumnName { get => PredictedLabelColumnName; set => PredictedLabelColumnName = value; }

    /// <summary>
    /// ML.NET's <c>TextClassificationTrainer</c> name for <see cref="TrainingSettings.Epochs"/> (the same setting). Training
    /// runs this many epochs unless <see cref="TrainingSettings.EarlyStoppingPatience"/> stops it sooner.
    /// </summary>
    [SettingAlias(nameof(Epochs)), JsonIgnore]
    public int MaxEpochs { get => Epochs; set => Epochs = value; }

    /// <summary>
    /// The base model: a local Hugging Face folder (config.json, model.safetensors, tokenizer files) or a Hub id such as
    /// <c>google/bert_uncased_L-2_H-128_A-2</c> (downloaded once into the Hugging Face cache). Required.
    /// </summary>
    public string ModelPath { get; set; } = "";

    /// <summary>How Hub ids in <see cref="ModelPath"/> are downloaded (endpoint, cache, offline mode, token); null uses the HF_* environment variables.</summary>
    public Microsoft.ML.LoRA.Hub.HubOptions? Hub { get; set; }

    /// <summary>LoRA settings: rank, alpha, dropout, targets, scaling, initialisation, bias mode, modules to save.</summary>
    public LoraOptions Lora { get; set; } = new();

    /// <summary>
    /// Which part of the model trains: <see cref="FineTuning.Lora"/> (default: adapters from <see cref="Lora"/> plus the
    /// head), <see cref="FineTuning.HeadOnly"/>, <see cref="FineTuning.LastLayers"/>(n) or <see cref="FineTuning.Full"/>.
    /// In every method the head trains, and so do modules the checkpoint lacks (a masked-LM checkpoint's pooler) unless
    /// <see cref="LoraOptions.ModulesToSave"/> names others. Non-LoRA fits save the changed weights in the model file;
    /// only LoRA fits export a PEFT adapter. Full fine-tuning usually wants a learning rate about 10x lower than LoRA.
    /// </summary>
    public FineTuning FineTuning { get; set; } = FineTuning.Lora;

    /// <summary>
    /// A PEFT adapter folder (adapter_config.json + adapter_model.safetensors) whose LoRA factors the fit starts from
    /// instead of fresh ones, for example the adapter <c>lora adapt --keep-adapter</c> wrote while adapting the base to
    /// unlabelled text of the domain. Its layers are adapted (with its ranks and scalings) and trained on; the other
    /// targets start fresh. LoRA only. Default none.
    /// </summary>
    public string? InitialAdapterPath { get; set; }

    /// <summary>Tokens per example including special tokens; longer text is truncated. Default: min(256, the model's positions).</summary>
    public int? MaxSequenceLength { get; set; }

    /// <summary>
    /// Validation data scored after every epoch (enables early stopping and best-epoch selection). Its label column
    /// may be the raw values (mapped through the training label's key values) or already key-typed.
    /// </summary>
    public IDataView? ValidationSet { get; set; }

    /// <summary>Instead of <see cref="ValidationSet"/>: hold out this share of the training rows, stratified by label and seeded. Default 0 (none).</summary>
    public double ValidationFraction { get; set; }

    /// <summary>Receives a report after every optimizer step (epoch, step, loss, learning rate, samples/s, time left).</summary>
    public IProgress<TrainingProgress>? Progress { get; set; }

    /// <summary>Stops training between steps; the fitted model then holds the best (or last) weights.</summary>
    public CancellationToken CancellationToken { get; set; }

    /// <summary>Threads libtorch may use; null keeps its default (all cores).</summary>
    public int? Threads { get; set; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first option that is missing or out of range.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(ModelPath)) throw new ArgumentException("ModelPath is required: a Hugging Face model folder or Hub id.", nameof(ModelPath));
        if (string.IsNullOrWhiteSpace(TextColumnName)) throw new ArgumentException("TextColumnName is required.", nameof(TextColumnName));
        if (string.IsNullOrWhiteSpace(LabelColumnName)) throw new ArgumentException("LabelColumnName is required.", nameof(LabelColumnName));
        if (MaxSequenceLength is < 1) throw new ArgumentException($"MaxSequenceLength must be positive (got {MaxSequenceLength}).", nameof(MaxSequenceLength));
        if (ValidationFraction < 0 || ValidationFraction >= 1) throw new ArgumentException($"ValidationFraction must be in [0, 1) (got {ValidationFraction}).", nameof(ValidationFraction));
        if (ValidationFraction > 0 && ValidationSet is not null) throw new ArgumentException("Set either ValidationSet or ValidationFraction, not both.", nameof(ValidationFraction));
        if (Threads is < 1) throw new ArgumentException($"Threads must be at least 1 (got {Threads}).", nameof(Threads));
        if (FineTuning is null) throw new ArgumentException("FineTuning is required (FineTuning.Lora, HeadOnly, LastLayers(n) or Full).", nameof(FineTuning));
        if (InitialAdapterPath is not null && !FineTuning.IsLora)
            throw new ArgumentException($"InitialAdapterPath continues a LoRA adapter, which needs FineTuning.Lora (not '{FineTuning}').", nameof(InitialAdapterPath));
        if (InitialAdapterPath is not null && !Directory.Exists(InitialAdapterPath))
            throw new DirectoryNotFoundException($"Initial adapter folder not found: {InitialAdapterPath}");
        Lora.Validate();
        if (Lora.BaseQuantization != Models.Quantization.BaseQuantization.None && FineTuning.Method is FineTuningMethod.LastLayers or FineTuningMethod.Full)
            throw new ArgumentException($"A quantized base (Lora.BaseQuantization = {Lora.BaseQuantization}) stays frozen, so it cannot train with FineTuning '{FineTuning}'; use LoRA or head-only fine-tuning, or BaseQuantization.None.", nameof(FineTuning));
        ValidateTraining();
    }
}
