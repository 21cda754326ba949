using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Training;

namespace Microsoft.ML.LoRA.Persistence;

/// <summary>
/// <c>lora-model.json</c>, the manifest of a saved model: what the LoRA stage reads and writes, its labels and LoRA
/// settings, where its base checkpoint is and the SHA-256 that identifies it, how the file is laid out, and the size
/// and SHA-256 of every other entry (<see cref="Entries"/>). It is written last, once those are known.
/// </summary>
public sealed class LoraModelManifest
{
    /// <summary>Format of the file; readers refuse versions they do not know.</summary>
    public const int CurrentFormatVersion = 1;

    public int FormatVersion { get; set; } = CurrentFormatVersion;
    public string Library { get; set; } = "Microsoft.ML.LoRA";
    public string? LibraryVersion { get; set; }
    public DateTimeOffset SavedAt { get; set; }

    public ClassifierTask Task { get; set; }
    public string TextColumnName { get; set; } = "";
    public string? TextPairColumnName { get; set; }
    public string LabelColumnName { get; set; } = "";
    public string ScoreColumnName { get; set; } = "";
    public string PredictedLabelColumnName { get; set; } = "";
    public string ProbabilityColumnName { get; set; } = "";
    public List<string> LabelNames { get; set; } = new();
    public string LabelValueKind { get; set; } = "none";
    public int MaxSequenceLength { get; set; }
    public int InferenceBatchSize { get; set; }
    /// <summary>The linear layers' product type (files written before it existed read as Float32).</summary>
    public ComputePrecision Precision { get; set; } = ComputePrecision.Float32;
    public LoraOptions Lora { get; set; } = new();
    /// <summary>Which part of the model was trained (files written before it existed read as LoRA).</summary>
    public FineTuning FineTuning { get; set; } = FineTuning.Lora;

    /// <summary>What the user gave as the base model (folder or Hub id).</summary>
    public string BaseModelSource { get; set; } = "";
    /// <summary>The absolute folder the base model was read from when training.</summary>
    public string BaseModelFolder { get; set; } = "";
    /// <summary>Combined SHA-256 of the base weight files.</summary>
    public string BaseModelWeightsSha256 { get; set; } = "";
    public string BaseModelType { get; set; } = "";

    /// <summary>"adapter": base weights stay outside the file; "embedded": base weights inside; "merged": merged weights inside.</summary>
    public string WeightsLayout { get; set; } = LayoutAdapter;

    /// <summary>Position of the LoRA stage in the flattened pipeline and how many stages precede and follow it.</summary>
    public int StagesBefore { get; set; }
    public int StagesAfter { get; set; }

    public TrainingHistory? History { get; set; }

    /// <summary>
    /// Every other entry of the file, by its name in the zip, with its size and SHA-256 as saved; loading checks each
    /// entry it reads against them. Null in files written before it existed: those are checked against the zip's
    /// CRC-32s and <see cref="LoraModelFileLimits"/> only.
    /// </summary>
    public Dictionary<string, LoraModelEntry>? Entries { get; set; }

    public const string LayoutAdapter = "adapter";
    public const string LayoutEmbedded = "embedded";
    public const string LayoutMerged = "merged";

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
    };

    public LabelSet Labels() => new(LabelNames, LabelValueKind);

    /// <summary>The manifest describing a fitted model saved with the given weights layout and pipeline position.</summary>
    public static LoraModelManifest Describe(LoraModelInfo info, string weightsLayout, int stagesBefore, int stagesAfter) => new()
    {
        LibraryVersion = typeof(LoraModelManifest).Assembly.GetName().Version?.ToString(),
        SavedAt = DateTimeOffset.UtcNow,
        Task = info.Task,
        TextColumnName = info.TextColumnName,
        TextPairColumnName = info.TextPairColumnName,
        LabelColumnName = info.LabelColumnName,
        ScoreColumnName = info.ScoreColumnName,
        PredictedLabelColumnName = info.PredictedLabelColumnName,
        ProbabilityColumnName = info.ProbabilityColumnName,
        LabelNames = info.Labels.Names.ToList(),
        LabelValueKind = info.Labels.ValueKind,
        MaxSequenceLength = info.MaxSequenceLength,
        InferenceBatchSize = info.InferenceBatchSize,
        Precision = info.Precision,
        Lora = info.Lora,
        FineTuning = info.FineTuning,
        BaseModelSource = info.BaseModel.Source,
        BaseModelFolder = info.BaseModel.Folder,
        BaseModelWeightsSha256 = info.BaseModel.WeightsSha256,
        BaseModelType = info.BaseModel.ModelType,
        WeightsLayout = weightsLayout,
        StagesBefore = stagesBefore,
        StagesAfter = stagesAfter,
        History = info.History,
    };

    /// <summary>
    /// The model description this manifest holds, with the base model now at <paramref name="baseFolder"/> and, when
    /// given, <paramref name="precision"/> instead of the saved one.
    /// </summary>
    public LoraModelInfo ToInfo(string baseFolder, IReadOnlyDictionary<string, byte[]> tokenizerFiles, ComputePrecision? precision = null) => new()
    {
        Task = Task,
        TextColumnName = TextColumnName,
        TextPairColumnName = TextPairColumnName,
        LabelColumnName = LabelColumnName,
        ScoreColumnName = ScoreColumnName,
        PredictedLabelColumnName = PredictedLabelColumnName,
        ProbabilityColumnName = ProbabilityColumnName,
        Labels = Labels(),
        Lora = Lora,
        FineTuning = FineTuning,
        MaxSequenceLength = MaxSequenceLength,
        InferenceBatchSize = InferenceBatchSize,
        Precision = precision ?? Precision,
        BaseModel = new BaseModelReference(BaseModelSource, baseFolder, BaseModelWeightsSha256, BaseModelType),
        TokenizerFiles = tokenizerFiles,
        History = History,
    };
}

/// <summary>The size and SHA-256 of one entry of a saved model, as its manifest records them.</summary>
public sealed class LoraModelEntry
{
    /// <summary>Length in bytes once inflated.</summary>
    public long Size { get; set; }

    /// <summary>SHA-256 of the inflated bytes, lower-case hex.</summary>
    public string Sha256 { get; set; } = "";
}
