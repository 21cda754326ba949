using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.LoRA.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Export;

/// <summary>Weight precision of an exported ONNX model.</summary>
public enum OnnxPrecision
{
    /// <summary>32-bit float weights and products.</summary>
    Float32,
    /// <summary>
    /// Float weights stored as float16 (half the file) and widened to fp32 when ONNX Runtime loads the model: fp32
    /// products and speed, weights rounded to 11 significant bits.
    /// </summary>
    Float16,
    /// <summary>Linear-layer weights int8 (symmetric, per output column), activations quantized per call (dynamic quantization).</summary>
    Int8,
}

/// <summary>Options of <see cref="OnnxExport"/>.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>Lowest opset written; the exporter supports <see cref="OnnxExport.MinOpset"/> to <see cref="OnnxExport.MaxOpset"/>.</summary>
    public int Opset { get; init; } = OnnxExport.MinOpset;

    /// <summary>Weight precision (default fp32).</summary>
    public OnnxPrecision Precision { get; init; } = OnnxPrecision.Float32;

    /// <summary>
    /// Store the weights in <c>model.onnx.data</c> beside <c>model.onnx</c> (ONNX external data; every tensor of 1 KiB
    /// or more). Null (default): only when the weights would not fit the 2 GB a single model.onnx can hold. ONNX
    /// Runtime and ML.NET's ApplyOnnxModel read the file from the model's folder, so keep the two together.
    /// </summary>
    public bool? ExternalData { get; init; }
}

/// <summary>What <see cref="OnnxExport"/> wrote.</summary>
/// <param name="Folder">The export folder.</param>
/// <param name="ModelPath">Its model.onnx.</param>
/// <param name="Inputs">The graph's inputs in order (input_ids, attention_mask, and token_type_ids where the family reads them).</param>
/// <param name="Labels">The label names, in logit order.</param>
/// <param name="ModelBytes">Size of model.onnx, and of model.onnx.data where the weights are stored there.</param>
/// <param name="TokenizerFiles">The tokenizer files written beside it (none for a model without a tokenizer).</param>
public sealed record OnnxExportResult(string Folder, string ModelPath, IReadOnlyList<string> Inputs, IReadOnlyList<string> Labels, long ModelBytes,
    IReadOnlyList<string> TokenizerFiles)
{
    /// <summary>The external data file (model.onnx.data) when the weights are stored outside model.onnx, else null.</summary>
    public string? ExternalDataPath { get; init; }
}

/// <summary>
/// Writes a model as an ONNX graph with its adapters folded into the weights, for scoring with ONNX Runtime and no
/// libtorch (the Microsoft.ML.LoRA.Onnx package): <c>model.onnx</c> (inputs <c>input_ids</c>, <c>attention_mask</c>
/// and, for families that read them, <c>token_type_ids</c>, int64 [batch, sequence] with both axes dynamic; output <c>logits</c> float
/// [batch, labels]), the tokenizer files, <c>config.json</c> with the labels, and <c>lora-onnx.json</c> describing
/// inputs, labels and tokenizer so a scoring pipeline can be built from the folder alone. See docs/deployment.md.
/// </summary>
public static class OnnxExport
{
    /// <summary>The file names written into the export folder.</summary>
    public const string ModelFileName = "model.onnx", DescriptionFileName = "lora-onnx.json", ConfigFileName = "config.json";

    /// <summary>Opsets the exporter writes: 17 (LayerNormalization) to 21.</summary>
    public const int MinOpset = 17, MaxOpset = 21;

    /// <summary>Largest model.onnx written with the weights inside: protobuf's 2 GB limit, less room for the graph.</summary>
    public const long MaxModelBytes = int.MaxValue - (64L << 20);

    /// <summary>The external data file beside model.onnx (<see cref="OnnxExportOptions.ExternalData"/>).</summary>
    public const string ExternalDataFileName = "model.onnx.data";

    /// <summary>Tensors of at least this many bytes go to the external data file (the ONNX tools' default).</summary>
    const long ExternalDataThreshold = 1024;

    /// <summary>Exports the LoRA stage of a fitted or loaded pipeline (<c>mlContext.Model.LoadWithLora</c>) into <paramref name="folder"/>.</summary>
    /// <exception cref="NotSupportedException">The family or an option cannot be exported (the message says which and why).</exception>
    public static OnnxExportResult Export(ITransformer model, string folder, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var lora = PipelineStages.LoraStage(model);
        var info = lora.Info;
        if (info.Task == ClassifierTask.Regression)
            throw new NotSupportedException("ONNX export writes classifiers (logits over the labels); this model is a regressor " +
                "(LoraTextRegressor), which the ONNX scorer would read as class scores. Score it with the library, or export a merged " +
                "Hugging Face checkpoint with 'lora merge'.");
        return Write(lora.Model, lora.LabelNames, info.TokenizerFiles, info.MaxSequenceLength, folder, options ?? new(),
            info.TextColumnName, info.TextPairColumnName);
    }

    /// <summary>
    /// Exports a classifier as it stands (adapters merged into the written weights; the model is not changed), with
    /// the tokenizer files of <paramref name="tokenizerFolder"/> when given.
    /// </summary>
    public static OnnxExportResult Export(SequenceClassifier model, IReadOnlyList<string> labels, string folder, OnnxExportOptions? options = null,
        string? tokenizerFolder = null, int? maxSequenceLength = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        if (tokenizerFolder is not null)
            foreach (var name in TextEncoders.TokenizerFileNames)
                if (File.Exists(Path.Combine(tokenizerFolder, name))) files[name] = File.ReadAllBytes(Path.Combine(tokenizerFolder, name));
        return Write(model, labels, files, maxSequenceLength ?? TextEncoders.ModelMaxLength(model.Config), folder, options ?? new(), null, null);
    }

    /// <summary>Throws <see cref="NotSupportedException"/> when <paramref name="options"/> or the model's family cannot be exported.</summary>
    public static void CheckSupported(TransformerConfig config, OnnxExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(config);
        CheckOptions(options);
        if (OnnxFamilyGraphs.Refusal(config) is { } why) throw new NotSupportedException(why + $"; exportable families: {string.Join(", ", OnnxFamilyGraphs.Supported)}");
    }

    /// <summary>Throws <see cref="NotSupportedException"/> when the exporter cannot write <paramref name="options"/> for any model.</summary>
    public static void CheckOptions(OnnxExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Opset is < MinOpset or > MaxOpset)
            throw new NotSupportedException($"opset {options.Opset} is not supported: the exporter writes opsets {MinOpset} to {MaxOpset} " +
                "(17 brings LayerNormalization; 20 the Gelu operator)");
        if (!Enum.IsDefined(options.Precision)) throw new NotSupportedException($"precision {options.Precision} is not supported");
    }

    static OnnxExportResult Write(SequenceClassifier model, IReadOnlyList<string> labels, IReadOnlyDictionary<string, byte[]> tokenizerFiles, int maxLength,
        string folder, OnnxExportOptions options, string? textColumn, string? pairColumn)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        ArgumentNullException.ThrowIfNull(labels);
        var config = model.Config;
        CheckSupported(config, options);
        if (labels.Count != model.NumLabels)
            throw new ArgumentException($"{labels.Count} label names for a model with {model.NumLabels} outputs", nameof(labels));

        var graph = new OnnxGraph(options.Opset);
        var layers = new OnnxLayers(graph, MergedWeights(model), options.Precision == OnnxPrecision.Int8, options.Precision == OnnxPrecision.Float16);
        OnnxFamilyGraphs.Build(layers, config, labels.Count);
        bool external = options.ExternalData ?? graph.InitializerBytes > MaxModelBytes;
        if (!external && graph.InitializerBytes > MaxModelBytes)
            throw new NotSupportedException($"the model's weights take {graph.InitializerBytes / (1 << 20)} MB; a single model.onnx holds at most 2 GB: " +
                "leave ExternalData unset (or true) to store them in model.onnx.data beside it");

        var description = Description(config, labels, maxLength, options, tokenizerFiles.Count > 0, textColumn, pairColumn);
        var metadata = new Dictionary<string, string>
        {
            ["family"] = config.Family,
            ["labels"] = JsonSerializer.Serialize(labels),
            ["precision"] = PrecisionName(options.Precision),
        };
        Directory.CreateDirectory(folder);
        var modelPath = Path.Combine(folder, ModelFileName);
        var dataPath = Path.Combine(folder, ExternalDataFileName);
        // The data first: model.onnx, written last, is what makes the export complete.
        if (external) AtomicFile.Write(dataPath, s => graph.WriteExternalData(s, ExternalDataThreshold));
        else if (File.Exists(dataPath)) File.Delete(dataPath);   // an earlier export's, which this model.onnx does not use
        AtomicFile.Write(modelPath, s => graph.WriteModel(s, $"{config.Family}_classifier", ProducerVersion, metadata,
            external ? ExternalDataFileName : null, ExternalDataThreshold));
        foreach (var (name, content) in tokenizerFiles) AtomicFile.Write(Path.Combine(folder, name), s => s.Write(content));
        AtomicFile.WriteAllText(Path.Combine(folder, ConfigFileName), config.ToJson(labels).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        AtomicFile.WriteAllText(Path.Combine(folder, DescriptionFileName), description.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return new OnnxExportResult(Path.GetFullPath(folder), Path.GetFullPath(modelPath), OnnxFamilyGraphs.Inputs(config), labels.ToArray(),
            new FileInfo(modelPath).Length + (external ? new FileInfo(dataPath).Length : 0), tokenizerFiles.Keys.Order(StringComparer.Ordinal).ToArray())
        {
            ExternalDataPath = external ? Path.GetFullPath(dataPath) : null,
        };
    }

    /// <summary>The precision's name on the command line and in lora-onnx.json: fp32, fp16, int8.</summary>
    public static string PrecisionName(OnnxPrecision precision) => precision switch
    {
        OnnxPrecision.Float32 => "fp32",
        OnnxPrecision.Float16 => "fp16",
        OnnxPrecision.Int8 => "int8",
        _ => precision.ToString(),
    };

    /// <summary>
    /// lora-onnx.json: what a scorer needs besides the graph: inputs and output, labels, and the tokenizer's
    /// convention with the config fields it reads (Microsoft.ML.LoRA.Onnx reads it).
    /// </summary>
    static JsonObject Description(TransformerConfig config, IReadOnlyList<string> labels, int maxLength, OnnxExportOptions options, bool hasTokenizer,
        string? textColumn, string? pairColumn) => new()
    {
        ["format"] = 1,
        ["family"] = config.Family,
        ["model_type"] = config.ModelType,
        ["opset"] = options.Opset,
        ["precision"] = PrecisionName(options.Precision),
        ["inputs"] = new JsonArray(OnnxFamilyGraphs.Inputs(config).Select(i => (JsonNode)JsonValue.Create(i)!).ToArray()),
        ["output"] = OnnxFamilyGraphs.Logits,
        ["labels"] = new JsonArray(labels.Select(l => (JsonNode)JsonValue.Create(l)!).ToArray()),
        ["max_sequence_length"] = maxLength,
        ["text_column"] = textColumn,
        ["text_pair_column"] = pairColumn,
        ["tokenizer"] = hasTokenizer ? new JsonObject
        {
            ["kind"] = config.Tokenizer.ToString(),
            ["takes_token_types"] = config.TakesTokenTypes,
            ["max_positions"] = config.MaxPositions,
            ["max_positions_field"] = config.MaxPositionsField,
            ["position_offset"] = config.PositionOffset,
            ["vocab_size"] = config.VocabSize,
            ["pad_token_id"] = config.PadTokenId,
            ["bos_token_id"] = config.BosTokenId,
            ["eos_token_id"] = config.EosTokenId,
        } : null,
    };

    static string ProducerVersion => typeof(OnnxExport).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "";

    /// <summary>The model's weights with adapters merged (<see cref="MergedCheckpoint.MergedTensors"/>) as float arrays under Hugging Face names.</summary>
    static Dictionary<string, WeightArray> MergedWeights(SequenceClassifier model)
    {
        var tensors = MergedCheckpoint.MergedTensors(model);
        try
        {
            var weights = new Dictionary<string, WeightArray>(StringComparer.Ordinal);
            foreach (var (name, tensor) in tensors)
            {
                using var cpu = tensor.to(ScalarType.Float32, CPU).contiguous();
                weights[name] = new WeightArray(cpu.data<float>().ToArray(), cpu.shape.ToArray());
            }
            return weights;
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }
}
