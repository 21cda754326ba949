using System.Text.Json;
using System.Text.Json.Nodes;

namespace Microsoft.ML.LoRA.Checkpoints;

/// <summary>The transformer families this library builds.</summary>
public enum ModelFamily
{
    /// <summary>BERT (<c>model_type</c> "bert"): post-norm encoder, [CLS] pooler + classifier.</summary>
    Bert,
    /// <summary>DistilBERT ("distilbert"): 6-layer BERT without token types or pooler; pre_classifier + classifier.</summary>
    DistilBert,
    /// <summary>RoBERTa ("roberta"): BERT encoder, padding-aware positions, dense + out_proj head.</summary>
    Roberta,
    /// <summary>GPT-2 ("gpt2"): pre-norm causal decoder with Conv1D weights, scored at the last real token.</summary>
    Gpt2,
}

/// <summary>
/// A Hugging Face <c>config.json</c> read into the fields this library needs, under one set of names whatever the
/// family calls them (<c>hidden_size</c> / <c>dim</c> / <c>n_embd</c>, ...). The original JSON is kept so a merged
/// checkpoint can be written back with every field the user had.
/// </summary>
public sealed record TransformerConfig
{
    public ModelFamily Family { get; init; }
    public string ModelType { get; init; } = "";
    public int HiddenSize { get; init; }
    public int NumLayers { get; init; }
    public int NumHeads { get; init; }
    public int IntermediateSize { get; init; }
    public int MaxPositions { get; init; }
    public int VocabSize { get; init; }
    public int TypeVocabSize { get; init; }
    public double LayerNormEps { get; init; }
    /// <summary>Hidden activation: "gelu" (erf), "gelu_new" / "gelu_pytorch_tanh" (tanh approximation), "relu".</summary>
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
        var r = new Reader(raw, source);
        string modelType = r.String("model_type") ?? throw new CheckpointFormatException(source, "has no model_type");
        var labels = ReadLabels(raw);
        int numLabels = r.IntOrNull("num_labels") ?? (labels.Count > 0 ? labels.Count : 2);
        TransformerConfig config = modelType switch
        {
            "bert" or "roberta" => new TransformerConfig
            {
                Family = modelType == "bert" ? ModelFamily.Bert : ModelFamily.Roberta,
                HiddenSize = r.Int("hidden_size"),
                NumLayers = r.Int("num_hidden_layers"),
                NumHeads = r.Int("num_attention_heads"),
                IntermediateSize = r.Int("intermediate_size"),
                MaxPositions = r.Int("max_position_embeddings"),
                VocabSize = r.Int("vocab_size"),
                TypeVocabSize = r.IntOrNull("type_vocab_size") ?? 2,
                LayerNormEps = r.DoubleOrNull("layer_norm_eps") ?? 1e-12,
                Activation = r.String("hidden_act") ?? "gelu",
                PadTokenId = r.IntOrNull("pad_token_id") ?? (modelType == "roberta" ? 1 : 0),
                HiddenDropout = r.DoubleOrNull("hidden_dropout_prob") ?? 0.1,
                AttentionDropout = r.DoubleOrNull("attention_probs_dropout_prob") ?? 0.1,
                EmbeddingDropout = r.DoubleOrNull("hidden_dropout_prob") ?? 0.1,
                ClassifierDropout = r.DoubleOrNull("classifier_dropout") ?? r.DoubleOrNull("hidden_dropout_prob") ?? 0.1,
            },
            "distilbert" => new TransformerConfig
            {
                Family = ModelFamily.DistilBert,
                HiddenSize = r.Int("dim"),
                NumLayers = r.Int("n_layers"),
                NumHeads = r.Int("n_heads"),
                IntermediateSize = r.Int("hidden_dim"),
                MaxPositions = r.Int("max_position_embeddings"),
                VocabSize = r.Int("vocab_size"),
                TypeVocabSize = 0,
                LayerNormEps = 1e-12,
                Activation = r.String("activation") ?? "gelu",
                PadTokenId = r.IntOrNull("pad_token_id") ?? 0,
                HiddenDropout = r.DoubleOrNull("dropout") ?? 0.1,
                AttentionDropout = r.DoubleOrNull("attention_dropout") ?? 0.1,
                EmbeddingDropout = r.DoubleOrNull("dropout") ?? 0.1,
                ClassifierDropout = r.DoubleOrNull("seq_classif_dropout") ?? 0.2,
            },
            "gpt2" => new TransformerConfig
            {
                Family = ModelFamily.Gpt2,
                HiddenSize = r.Int("n_embd"),
                NumLayers = r.Int("n_layer"),
                NumHeads = r.Int("n_head"),
                IntermediateSize = r.IntOrNull("n_inner") ?? 4 * r.Int("n_embd"),
                MaxPositions = r.Int("n_positions"),
                VocabSize = r.Int("vocab_size"),
                TypeVocabSize = 0,
                LayerNormEps = r.DoubleOrNull("layer_norm_epsilon") ?? 1e-5,
                Activation = r.String("activation_function") ?? "gelu_new",
                PadTokenId = r.IntOrNull("pad_token_id"),
                HiddenDropout = r.DoubleOrNull("resid_pdrop") ?? 0.1,
                AttentionDropout = r.DoubleOrNull("attn_pdrop") ?? 0.1,
                EmbeddingDropout = r.DoubleOrNull("embd_pdrop") ?? 0.1,
                ClassifierDropout = 0.0,
            },
            _ => throw new CheckpointFormatException(source,
                $"model_type '{modelType}' is not supported (supported: bert, distilbert, roberta, gpt2)"),
        };
        config = config with
        {
            ModelType = modelType, BosTokenId = r.IntOrNull("bos_token_id"), EosTokenId = r.IntOrNull("eos_token_id"),
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
        if (Activation is not ("gelu" or "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" or "relu"))
            throw new CheckpointFormatException(Source, $"activation '{Activation}' is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu)");
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

    sealed class Reader(JsonObject raw, string source)
    {
        /// <summary>A JSON number as double, whether parsed from text or built in code from an int, long or double.</summary>
        static double? Number(JsonNode node)
        {
            if (node is not JsonValue v || v.GetValueKind() != JsonValueKind.Number) return null;
            if (v.TryGetValue<double>(out var d)) return d;
            if (v.TryGetValue<long>(out var l)) return l;
            if (v.TryGetValue<int>(out var i)) return i;
            if (v.TryGetValue<float>(out var f)) return f;
            return null;
        }

        public string? String(string key) =>
            raw[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

        public int Int(string key) =>
            IntOrNull(key) ?? throw new CheckpointFormatException(source, $"is missing the integer field '{key}'");

        public int? IntOrNull(string key)
        {
            var node = raw[key];
            if (node is null) return null;
            if (Number(node) is double d && d == Math.Floor(d) && d >= int.MinValue && d <= int.MaxValue)
                return (int)d;
            throw new CheckpointFormatException(source, $"field '{key}' is not an integer ({node.ToJsonString()})");
        }

        public double? DoubleOrNull(string key)
        {
            var node = raw[key];
            if (node is null) return null;
            if (Number(node) is double d) return d;
            throw new CheckpointFormatException(source, $"field '{key}' is not a number ({node.ToJsonString()})");
        }
    }
}
