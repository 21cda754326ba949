using System.Text.Json.Serialization;

namespace Microsoft.ML.LoRA.Adaptation;

/// <summary>
/// What a domain-adaptation run did and measured; <see cref="DomainAdaptation.Run"/> also writes it to the output
/// folder's <c>adapt.json</c>. Losses are the mean cross-entropy per predicted token (masked LM: the chosen tokens;
/// causal LM: every token after the first), measured with fixed masks so that "before" and "after" compare the same
/// predictions.
/// </summary>
public sealed record DomainAdaptationResult
{
    /// <summary>The folder written.</summary>
    public required string OutputPath { get; init; }

    /// <summary>The model as given (folder or Hub id).</summary>
    public required string Model { get; init; }

    /// <summary>The config's model_type (bert, distilbert, roberta, gpt2).</summary>
    public required string ModelType { get; init; }

    /// <summary>The Hugging Face class of the written checkpoint (BertForMaskedLM, GPT2LMHeadModel, ...).</summary>
    public required string Architecture { get; init; }

    /// <summary>Masked or causal language modelling.</summary>
    [JsonConverter(typeof(JsonStringEnumConverter<LanguageModelObjective>))]
    public required LanguageModelObjective Objective { get; init; }

    /// <summary>LoRA or full.</summary>
    [JsonConverter(typeof(JsonStringEnumConverter<AdaptationMethod>))]
    public required AdaptationMethod Method { get; init; }

    /// <summary>True when the output holds the base weights plus a PEFT adapter folder (adapter/) instead of merged weights.</summary>
    public bool KeptAdapter { get; init; }

    /// <summary>Texts trained on.</summary>
    public int Rows { get; init; }

    /// <summary>Texts held out to measure the loss (0 without <see cref="DomainAdaptationOptions.ValidationFraction"/>).</summary>
    public int ValidationRows { get; init; }

    /// <summary>Empty or blank texts left out.</summary>
    public int SkippedRows { get; init; }

    /// <summary>Passes over the training texts.</summary>
    public int Epochs { get; init; }

    /// <summary>Optimizer steps taken.</summary>
    public long Steps { get; init; }

    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; }

    /// <summary>Texts per step.</summary>
    public int BatchSize { get; init; }

    /// <summary>Tokens per text, special tokens included.</summary>
    public int MaxSequenceLength { get; init; }

    /// <summary>Share of tokens chosen (masked LM); null for causal LM.</summary>
    public double? MaskProbability { get; init; }

    /// <summary>The seed.</summary>
    public int Seed { get; init; }

    /// <summary>LoRA: the layers that carried adapters; empty for full adaptation.</summary>
    public IReadOnlyList<string> AdaptedModules { get; init; } = Array.Empty<string>();

    /// <summary>Parameters that trained.</summary>
    public long TrainableParameters { get; init; }

    /// <summary>Parameters of the language model (tied weights counted once, adapters included).</summary>
    public long TotalParameters { get; init; }

    /// <summary>True when the checkpoint had no language-model head and a new one was created.</summary>
    public bool CreatedHead { get; init; }

    /// <summary>Training texts the initial and final losses were measured on (the first up to 512).</summary>
    public int LossSampleRows { get; init; }

    /// <summary>Loss on <see cref="LossSampleRows"/> training texts before adaptation.</summary>
    public double InitialLoss { get; init; }

    /// <summary>Loss on the same texts, with the same masks, after adaptation.</summary>
    public double FinalLoss { get; init; }

    /// <summary>The mean training loss of each epoch (masks drawn afresh each epoch).</summary>
    public IReadOnlyList<double> EpochLosses { get; init; } = Array.Empty<double>();

    /// <summary>Held-out loss before adaptation; null without validation texts.</summary>
    public double? ValidationLossBefore { get; init; }

    /// <summary>Held-out loss after adaptation; null without validation texts.</summary>
    public double? ValidationLossAfter { get; init; }

    /// <summary>exp(<see cref="ValidationLossBefore"/>).</summary>
    public double? ValidationPerplexityBefore { get; init; }

    /// <summary>exp(<see cref="ValidationLossAfter"/>).</summary>
    public double? ValidationPerplexityAfter { get; init; }

    /// <summary>Seconds spent in the training loop.</summary>
    public double TrainingSeconds { get; init; }

    /// <summary>Seconds for the whole run: loading, tokenizing, measuring, training and writing.</summary>
    public double Seconds { get; init; }
}
