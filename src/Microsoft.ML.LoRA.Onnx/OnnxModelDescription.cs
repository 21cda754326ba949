using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tokenization;

namespace Microsoft.ML.LoRA.Onnx;

/// <summary>
/// An export folder's <c>lora-onnx.json</c> (written by <c>lora export-onnx</c>): the graph's inputs and output,
/// the labels, the longest sequence the model was trained to read, and the tokenizer's convention with the config
/// fields it reads, so the folder alone builds a scorer.
/// </summary>
public sealed record OnnxModelDescription
{
    /// <summary>The description's file name in an export folder.</summary>
    public const string FileName = "lora-onnx.json";

    /// <summary>The graph's file name in an export folder.</summary>
    public const string ModelFileName = "model.onnx";

    public required string Family { get; init; }
    public required string ModelType { get; init; }
    public required int Opset { get; init; }
    /// <summary>fp32 or int8.</summary>
    public required string Precision { get; init; }
    /// <summary>The graph's inputs in order: input_ids, attention_mask and, where the family reads them, token_type_ids.</summary>
    public required IReadOnlyList<string> Inputs { get; init; }
    public required string Output { get; init; }
    /// <summary>Label names in logit order.</summary>
    public required IReadOnlyList<string> Labels { get; init; }
    /// <summary>Most tokens per example, special tokens included (the trained model's setting).</summary>
    public required int MaxSequenceLength { get; init; }
    /// <summary>The text column of the pipeline the model was trained in, if it was.</summary>
    public string? TextColumn { get; init; }
    /// <summary>The second text column of a pair model, if any.</summary>
    public string? TextPairColumn { get; init; }
    /// <summary>The config the tokenizer reads (null when the export has no tokenizer).</summary>
    public TransformerConfig? TokenizerConfig { get; init; }

    /// <summary>Whether the graph takes token_type_ids.</summary>
    public bool TakesTokenTypes => Inputs.Contains("token_type_ids");

    /// <summary>Reads <c>lora-onnx.json</c> in <paramref name="folder"/>.</summary>
    /// <exception cref="FileNotFoundException">The folder has no lora-onnx.json.</exception>
    /// <exception cref="InvalidDataException">The file is not a description this version reads.</exception>
    public static OnnxModelDescription Load(string folder)
    {
        var path = Path.Combine(folder, FileName);
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path} not found: the folder is not an ONNX export of Microsoft.ML.LoRA ('lora export-onnx' writes it)", path);
        JsonObject root;
        try { root = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"{path}: not a JSON object"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message})"); }
        string Text(string key) => root[key]?.GetValue<string>() ?? throw new InvalidDataException($"{path}: no {key}");
        int Int(JsonObject o, string key) => o[key]?.GetValue<int>() ?? throw new InvalidDataException($"{path}: no {key}");
        IReadOnlyList<string> List(string key) => (root[key] as JsonArray ?? throw new InvalidDataException($"{path}: no {key}"))
            .Select(n => n?.GetValue<string>() ?? throw new InvalidDataException($"{path}: null in {key}")).ToArray();
        static int? OptionalInt(JsonObject o, string key) => o[key] is JsonValue v ? v.GetValue<int>() : null;
        try
        {
            int format = Int(root, "format");
            if (format != 1) throw new InvalidDataException($"{path}: format {format} is newer than this version reads (1)");
            var modelType = Text("model_type");
            TransformerConfig? tokenizer = null;
            if (root["tokenizer"] is JsonObject t)
            {
                var kindName = t["kind"]?.GetValue<string>();
                if (!Enum.TryParse<TokenizerKind>(kindName, out var kind)) throw new InvalidDataException($"{path}: unknown tokenizer kind '{kindName}'");
                tokenizer = new TransformerConfig
                {
                    Family = Text("family"), ModelType = modelType, Tokenizer = kind,
                    TakesTokenTypes = t["takes_token_types"]?.GetValue<bool>() ?? false,
                    MaxPositions = Int(t, "max_positions"), MaxPositionsField = t["max_positions_field"]?.GetValue<string>() ?? "max_position_embeddings",
                    PositionOffset = t["position_offset"]?.GetValue<int>() ?? 0, VocabSize = Int(t, "vocab_size"),
                    PadTokenId = OptionalInt(t, "pad_token_id"), BosTokenId = OptionalInt(t, "bos_token_id"), EosTokenId = OptionalInt(t, "eos_token_id"),
                    Source = path,
                };
            }
            return new OnnxModelDescription
            {
                Family = Text("family"), ModelType = modelType, Opset = Int(root, "opset"), Precision = Text("precision"),
                Inputs = List("inputs"), Output = Text("output"), Labels = List("labels"), MaxSequenceLength = Int(root, "max_sequence_length"),
                TextColumn = root["text_column"]?.GetValue<string>(), TextPairColumn = root["text_pair_column"]?.GetValue<string>(),
                TokenizerConfig = tokenizer,
            };
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{path}: a field has the wrong type ({e.Message})");
        }
    }

    /// <summary>The tokenizer in <paramref name="folder"/> as training used it, truncating to <paramref name="maxLength"/> (default <see cref="MaxSequenceLength"/>).</summary>
    /// <exception cref="InvalidOperationException">The export has no tokenizer (a model exported without one scores token ids only).</exception>
    public ITextEncoder CreateTextEncoder(string folder, int? maxLength = null)
    {
        if (TokenizerConfig is null)
            throw new InvalidOperationException($"the export in {folder} has no tokenizer files; score token ids instead (OnnxTextClassifier.Logits(ids, mask))");
        return TextEncoders.FromFolder(folder, TokenizerConfig, maxLength ?? MaxSequenceLength);
    }
}
