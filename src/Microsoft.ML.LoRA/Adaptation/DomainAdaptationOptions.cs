using Microsoft.ML.LoRA.Hub;
using Microsoft.ML.LoRA.Lora;

namespace Microsoft.ML.LoRA.Adaptation;

/// <summary>
/// Options of <see cref="DomainAdaptation.Run"/>: which checkpoint to adapt, where to write the adapted one, the method
/// (LoRA or full), the LoRA settings and the training hyper-parameters. Every property has a sensible default except
/// <see cref="ModelPath"/> and <see cref="OutputPath"/>.
/// </summary>
public sealed class DomainAdaptationOptions
{
    /// <summary>Learning rate used with <see cref="AdaptationMethod.Lora"/> when <see cref="LearningRate"/> is null.</summary>
    public const double DefaultLoraLearningRate = 5e-4;

    /// <summary>Learning rate used with <see cref="AdaptationMethod.Full"/> when <see cref="LearningRate"/> is null.</summary>
    public const double DefaultFullLearningRate = 5e-5;

    /// <summary>Tokens per text when <see cref="MaxSequenceLength"/> is null (or the model's limit, when lower).</summary>
    public const int DefaultMaxSequenceLength = 128;

    /// <summary>
    /// The checkpoint to adapt: a local Hugging Face folder (config.json, weights, tokenizer files) or a Hub id
    /// (downloaded once into the Hugging Face cache). BERT, DistilBERT and RoBERTa learn by masked-language modelling,
    /// GPT-2 by next-token prediction. Required.
    /// </summary>
    public string ModelPath { get; set; } = "";

    /// <summary>How Hub ids in <see cref="ModelPath"/> are downloaded; null uses the HF_* environment variables.</summary>
    public HubOptions? Hub { get; set; }

    /// <summary>
    /// The folder the adapted checkpoint is written to: config.json, model.safetensors, the tokenizer files and
    /// adapt.json (and adapter/ with <see cref="KeepAdapter"/>). It must not exist or be empty unless
    /// <see cref="Overwrite"/> is set. Required.
    /// </summary>
    public string OutputPath { get; set; } = "";

    /// <summary>Replace a non-empty <see cref="OutputPath"/> (the old content is removed only once the new one is complete). Default false.</summary>
    public bool Overwrite { get; set; }

    /// <summary>LoRA (default) or full continued pre-training.</summary>
    public AdaptationMethod Method { get; set; } = AdaptationMethod.Lora;

    /// <summary>
    /// LoRA settings (<see cref="AdaptationMethod.Lora"/> only). Targets default to every linear layer of the
    /// transformer layers, as in fine-tuning (PEFT's masked-LM examples adapt query and value only); any target list, regex or switch works as in training, except
    /// <see cref="LoraOptions.LoraHead"/> (there is no classification head). <see cref="LoraOptions.ModulesToSave"/>
    /// (default none here) and <see cref="LoraOptions.Bias"/> apply to the base model's modules; the language-model head
    /// stays frozen.
    /// </summary>
    public LoraOptions Lora { get; set; } = new();

    /// <summary>
    /// With <see cref="AdaptationMethod.Lora"/>: write the unchanged base weights plus the adapter as a PEFT folder
    /// (<c>adapter/</c> inside <see cref="OutputPath"/>, loadable by <see cref="PeftAdapter.Load"/> into a classifier
    /// built on the same base) instead of merging the adapter into the weights. Default false (merged).
    /// </summary>
    public bool KeepAdapter { get; set; }

    /// <summary>Passes over the texts. Default 1.</summary>
    public int Epochs { get; set; } = 1;

    /// <summary>Texts per optimizer step. Default 32.</summary>
    public int BatchSize { get; set; } = 32;

    /// <summary>Peak AdamW learning rate. Null (default): 5e-4 with LoRA, 5e-5 for full adaptation.</summary>
    public double? LearningRate { get; set; }

    /// <summary>Share of the steps spent warming the rate up linearly from 0; then it decays linearly to 0. Default 0.06.</summary>
    public double WarmupFraction { get; set; } = 0.06;

    /// <summary>AdamW weight decay, on weights but not on biases and normalisation parameters. Default 0.01.</summary>
    public double WeightDecay { get; set; } = 0.01;

    /// <summary>Clip the global gradient norm to this value; 0 disables clipping. Default 1.0.</summary>
    public double MaxGradientNorm { get; set; } = 1.0;

    /// <summary>Tokens per text including special tokens; longer text is truncated. Default: 128, or the model's limit when lower.</summary>
    public int? MaxSequenceLength { get; set; }

    /// <summary>Masked LM: the share of tokens chosen for prediction (80% masked, 10% random, 10% kept). Default 0.15.</summary>
    public double MaskProbability { get; set; } = 0.15;

    /// <summary>Seed of weight initialisation, dropout, masking, shuffling and the validation split: the same seed and texts give the same weights. Default 42.</summary>
    public int Seed { get; set; } = 42;

    /// <summary>Hold out this share of the texts (seeded) to measure the language-model loss before and after. Default 0 (none).</summary>
    public double ValidationFraction { get; set; }

    /// <summary>Texts per batch when measuring the loss. Default 64.</summary>
    public int InferenceBatchSize { get; set; } = 64;

    /// <summary>Threads libtorch may use; null keeps its default (all cores).</summary>
    public int? Threads { get; set; }

    /// <summary>Receives messages: what was loaded or created, what trains, each epoch's loss, the losses before and after.</summary>
    public Action<string>? Log { get; set; }

    /// <summary>The learning rate the run uses: <see cref="LearningRate"/>, or the method's default.</summary>
    public double EffectiveLearningRate => LearningRate ?? (Method == AdaptationMethod.Full ? DefaultFullLearningRate : DefaultLoraLearningRate);

    /// <summary>Throws <see cref="ArgumentException"/> naming the first option that is missing or out of range.</summary>
    public void Validate()
    {
        static void Check(bool ok, string name, object? value, string rule)
        {
            if (!ok) throw new ArgumentException($"{name} {rule} (got {value}).", name);
        }
        if (string.IsNullOrWhiteSpace(ModelPath)) throw new ArgumentException("ModelPath is required: a Hugging Face model folder or Hub id.", nameof(ModelPath));
        if (string.IsNullOrWhiteSpace(OutputPath)) throw new ArgumentException("OutputPath is required: the folder to write the adapted checkpoint to.", nameof(OutputPath));
        Check(Enum.IsDefined(Method), nameof(Method), Method, "must be Lora or Full");
        Check(!KeepAdapter || Method == AdaptationMethod.Lora, nameof(KeepAdapter), KeepAdapter, "needs Method = Lora (full adaptation has no adapter to keep)");
        Check(Epochs >= 1, nameof(Epochs), Epochs, "must be at least 1");
        Check(BatchSize >= 1, nameof(BatchSize), BatchSize, "must be at least 1");
        Check(LearningRate is null || (LearningRate > 0 && double.IsFinite(LearningRate.Value)), nameof(LearningRate), LearningRate, "must be a positive number");
        Check(WarmupFraction >= 0 && WarmupFraction < 1, nameof(WarmupFraction), WarmupFraction, "must be in [0, 1)");
        Check(WeightDecay >= 0 && double.IsFinite(WeightDecay), nameof(WeightDecay), WeightDecay, "must be non-negative");
        Check(MaxGradientNorm >= 0 && double.IsFinite(MaxGradientNorm), nameof(MaxGradientNorm), MaxGradientNorm, "must be non-negative");
        Check(MaxSequenceLength is null or >= 2, nameof(MaxSequenceLength), MaxSequenceLength, "must be at least 2");
        Check(MaskProbability > 0 && MaskProbability < 1, nameof(MaskProbability), MaskProbability, "must be in (0, 1)");
        Check(ValidationFraction >= 0 && ValidationFraction < 1, nameof(ValidationFraction), ValidationFraction, "must be in [0, 1)");
        Check(InferenceBatchSize >= 1, nameof(InferenceBatchSize), InferenceBatchSize, "must be at least 1");
        Check(Threads is null or >= 1, nameof(Threads), Threads, "must be at least 1");
        if (Method == AdaptationMethod.Lora)
        {
            Lora.Validate();
            if (Lora.LoraHead)
                throw new ArgumentException("LoraHead has no meaning in domain adaptation: there is no classification head, and the language-model head stays frozen.", nameof(Lora));
            bool noTarget = Lora.TargetModules is { Count: 0 } && Lora.TargetModulesRegex is null
                && !(Lora.LoraQuery || Lora.LoraKey || Lora.LoraValue || Lora.LoraProjection || Lora.LoraMlp);
            if (noTarget && Lora.ModulesToSave is not { Count: > 0 } && Lora.Bias == LoraBias.None)
                throw new ArgumentException("The LoRA options name no layer to adapt and no module to save: domain adaptation would train nothing.", nameof(Lora));
        }
    }
}
