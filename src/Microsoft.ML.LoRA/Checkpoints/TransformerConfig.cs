using System.Text.Json;
using System.Text.Json.Nodes;

namespace Microsoft.ML.LoRA.Checkpoints;

/// <summary>
/// A Hugging Face <c>config.json</c> read into the fields this library needs, under one set of names whatever the
/// family calls them (<c>hidden_size</c> / <c>dim</c> / <c>n_embd</c>, ...). The original JSON is kept so a merged
/// checkpoint can be written back with every field the user had.
/// </summary>
public sealed record TransformerConfig
{
    /// <summary>The family whose config dialect read this config (its <see cref="IConfigDialect.Name"/>: "bert", "gpt2", ...).</summary>
    public string Family { get; init; } = "";
    public string ModelType { get; init; } = "";
    public int HiddenSize { get; init; }
    public int NumLayers { get; init; }
    public int NumHeads { get; init; }
    public int IntermediateSize { get; init; }
    public int MaxPositions { get; init; }
    public int VocabSize { get; init; }
    public int TypeVocabSize { get; init; }
    public double LayerNormEps { get; init; }
    /// <summary>Hidden activation by Hugging Face name (see <c>Models.Kernels.Activations</c> for the ones supported).</summary>
    public string Activation { get; init; } = "gelu";
    public int? PadTokenId { get; init; }
    public int? BosTokenId { get; init; }
    public int? EosTokenId { get; init; }
    public double HiddenDropout { get; init; }
    public double AttentionDropout { get; init; }
    public double EmbeddingDropout { get; init; }
    public double ClassifierDropout { get; init; }
    /// <summary>Labels named by the config's <c>id2label</c> (empty when it has none).</summary>
    public IReadOnlyList<string> Labels { get; init; } = Array.Empty<string>();
    /// <summary><c>num_labels</c> (or the size of <c>id2label</c>); 2 when the config names neither.</summary>
    public int NumLabels { get; init; } = 2;
    /// <summary>The tokenizer convention of the family (set by its config dialect).</summary>
    public TokenizerKind Tokenizer { get; init; }
    /// <summary>True when the model reads token type ids (BERT's segment embeddings) and its tokenizer returns them.</summary>
    public bool TakesTokenTypes { get; init; }
    /// <summary>
    /// Positions the model reserves before the first token (RoBERTa: 2, its positions start after the padding index);
    /// the most tokens it takes is <see cref="MaxPositions"/> minus this.
    /// </summary>
    public int PositionOffset { get; init; }
    /// <summary>The config.json field <see cref="MaxPositions"/> was read from (for messages).</summary>
    public string MaxPositionsField { get; init; } = "max_position_embeddings";
    /// <summary>True when the checkpoint stores linear weights [in, out] (GPT-2's Conv1D): PEFT's fan_in_fan_out.</summary>
    public bool FanInFanOut { get; init; }
    /// <summary>The config file as read.</summary>
    public JsonObject Raw { get; init; } = new();
    /// <summary>Where the config was read from (for error messages).</summary>
    public string Source { get; init; } = "config.json";

    public int HeadDim => HiddenSize / NumHeads;

    /// <summary>Largest config.json read (real ones are a few KB).</summary>
    public const long MaxConfigBytes = 16L * 1024 * 1024;

    /// <summary>Reads and validates a config.json file.</summary>
    public static TransformerConfig Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"config.json not found: {path}", path);
        long length = new FileInfo(path).Length;
        if (length > MaxConfigBytes)
            throw new CheckpointFormatException(path, $"config is {length} bytes; more than the {MaxConfigBytes}-byte limit for a config.json");
        JsonNode? node;
        try { node = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new CheckpointFormatException(path, $"not valid JSON ({e.Message})"); }
        if (node is not JsonObject obj) throw new CheckpointFormatException(path, "config is not a JSON object");
        return Parse(obj, path);
    }

    /// <summary>Reads a config from its JSON object; <paramref name="source"/> names it in errors.</summary>
    public static TransformerConfig Parse(JsonObject raw, string source = "config.json")
    {
        var r = new ConfigJson(raw, source);
        string modelType = r.String("model_type") ?? throw new CheckpointFormatException(source, "has no model_type");
        var labels = ReadLabels(raw);
        int numLabels = r.IntOrNull("num_labels") ?? (labels.Count > 0 ? labels.Count : 2);
        var dialect = ConfigDialects.For(modelType) ?? throw new CheckpointFormatException(source,
            $"model_type '{modelType}' is not supported (supported: {string.Join(", ", ConfigDialects.ModelTypes)})");
        var config = dialect.Read(r);
        config = config with
        {
            Family = dialect.Name, ModelType = modelType, BosTokenId = r.IntOrNull("bos_token_id"), EosTokenId = r.FirstIntOrNull("eos_token_id"),
            Labels = labels, NumLabels = numLabels, Raw = raw, Source = source,
        };
        config.Validate();
        return config;
    }

    void Validate()
    {
        void Positive(int value, string name)
        {
            if (value <= 0) throw new CheckpointFormatException(Source, $"{name} must be positive (got {value})");
        }
        Positive(HiddenSize, "hidden size");
        Positive(NumLayers, "number of layers");
        Positive(NumHeads, "number of attention heads");
        Positive(IntermediateSize, "intermediate size");
        Positive(MaxPositions, "max positions");
        Positive(VocabSize, "vocab size");
        Positive(NumLabels, "num_labels");
        if (HiddenSize % NumHeads != 0)
            throw new CheckpointFormatException(Source, $"hidden size {HiddenSize} is not a multiple of the {NumHeads} attention heads");
        if (LayerNormEps <= 0) throw new CheckpointFormatException(Source, "layer norm epsilon must be positive");
    }

    static IReadOnlyList<string> ReadLabels(JsonObject raw)
    {
        if (raw["id2label"] is not JsonObject map) return Array.Empty<string>();
        var pairs = new List<(int, string)>();
        foreach (var (key, value) in map)
            if (int.TryParse(key, out var id) && value is JsonValue v && v.TryGetValue<string>(out var name)) pairs.Add((id, name));
        pairs.Sort();
        for (int i = 0; i < pairs.Count; i++) if (pairs[i].Item1 != i) return Array.Empty<string>();
        return pairs.Select(p => p.Item2).ToArray();
    }

    /// <summary>A copy of the raw config with the classification labels replaced (for writing a checkpoint).</summary>
    public JsonObject ToJson(IReadOnlyList<string> labels)
    {
        var copy = (JsonObject)Raw.DeepClone();
        copy["num_labels"] = labels.Count;
        var id2label = new JsonObject();
        var label2id = new JsonObject();
        for (int i = 0; i < labels.Count; i++)
        {
            id2label[i.ToString()] = labels[i];
            label2id[labels[i]] = i;
        }
        copy["id2label"] = id2label;
        copy["label2id"] = label2id;
        return copy;
    }
}
