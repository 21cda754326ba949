using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// The rotary position embedding's frequencies, as Hugging Face's ROPE_INIT_FUNCTIONS compute them
/// (modeling_rope_utils.py) for the three kinds read here: "default" (_compute_default_rope_parameters), "linear"
/// (_compute_linear_scaling_rope_parameters: every frequency divided by the factor) and "llama3"
/// (_compute_llama3_parameters: low frequencies divided by the factor, high ones kept, a smooth blend between).
/// </summary>
public sealed record LlamaRope(string Type, double Theta, double Factor = 1, double LowFreqFactor = 1, double HighFreqFactor = 4,
    int OriginalMaxPositions = 8192)
{
    /// <summary>The rotary kinds this family reads; any other is refused rather than silently computed another way.</summary>
    public static readonly IReadOnlyList<string> Supported = new[] { "default", "linear", "llama3" };

    /// <summary>
    /// The inverse frequencies of a head of <paramref name="headDim"/> dimensions: headDim / 2 values, in float32 as
    /// Hugging Face computes them (1 / theta^(2i / headDim), then the scaling of <see cref="Type"/>).
    /// </summary>
    public float[] InverseFrequencies(int headDim)
    {
        var result = new float[headDim / 2];
        for (int i = 0; i < result.Length; i++)
        {
            float exponent = (float)(2 * i) / headDim;
            float inv = 1f / (float)Math.Pow(Theta, exponent);
            result[i] = Type switch
            {
                "linear" => inv / (float)Factor,
                "llama3" => Llama3(inv),
                _ => inv,
            };
        }
        return result;
    }

    /// <summary>
    /// _compute_llama3_parameters for one frequency: wavelengths above original_max_position_embeddings /
    /// low_freq_factor are divided by the factor, those below original / high_freq_factor kept, and those between
    /// blended with smooth = (original / wavelength - low) / (high - low).
    /// </summary>
    float Llama3(float inv)
    {
        float factor = (float)Factor, low = (float)LowFreqFactor, high = (float)HighFreqFactor;
        float lowFreqWavelength = OriginalMaxPositions / low, highFreqWavelength = OriginalMaxPositions / high;
        float wavelength = (float)(2 * Math.PI) / inv;
        float scaled = wavelength > lowFreqWavelength ? inv / factor : inv;
        bool medium = !(wavelength < highFreqWavelength) && !(wavelength > lowFreqWavelength);
        if (!medium) return scaled;
        float smooth = (OriginalMaxPositions / wavelength - low) / (high - low);
        return (1 - smooth) * scaled / factor + smooth * scaled;
    }
}

/// <summary>
/// What the LLaMA family's configs (LlamaConfig, MistralConfig, Qwen2Config) say beyond <see cref="TransformerConfig"/>'s
/// common fields, read from config.json with Hugging Face's defaults: head size, key/value heads, which projections
/// have biases, the rotary embedding and each layer's sliding window.
/// </summary>
public sealed record LlamaSettings
{
    /// <summary>Size of one attention head: the config's <c>head_dim</c>, else hidden_size / num_attention_heads.</summary>
    public required int HeadDim { get; init; }

    /// <summary><c>num_key_value_heads</c> (grouped-query attention), else as many as the query heads.</summary>
    public required int KeyValueHeads { get; init; }

    /// <summary>Whether q_proj, k_proj and v_proj have biases (Qwen2 always; Llama with <c>attention_bias</c>).</summary>
    public required bool QueryKeyValueBias { get; init; }

    /// <summary>Whether o_proj has a bias (Llama with <c>attention_bias</c>; never Mistral or Qwen2).</summary>
    public required bool OutputBias { get; init; }

    /// <summary>Whether gate_proj, up_proj and down_proj have biases (Llama with <c>mlp_bias</c>).</summary>
    public required bool MlpBias { get; init; }

    /// <summary>The rotary position embedding.</summary>
    public required LlamaRope Rope { get; init; }

    /// <summary>Each layer's sliding window (a query sees the keys less than this many positions back), or null for full causal attention.</summary>
    public required IReadOnlyList<int?> SlidingWindows { get; init; }

    /// <summary>The settings of a config the family has read (its <see cref="TransformerConfig.Raw"/> JSON).</summary>
    public static LlamaSettings Of(TransformerConfig config) =>
        Read(new ConfigJson(config.Raw, config.Source), config.ModelType, config.HiddenSize, config.NumHeads, config.NumLayers);

    /// <summary>Reads and checks the settings; every refusal names the field and its value.</summary>
    internal static LlamaSettings Read(ConfigJson r, string modelType, int hidden, int heads, int layers)
    {
        int headDim = r.IntOrNull("head_dim") ?? hidden / heads;
        if (headDim <= 0 || headDim % 2 != 0)
            throw new CheckpointFormatException(r.Source, $"head_dim must be a positive even number, as the rotary embedding turns pairs of dimensions (got {headDim})");
        int kvHeads = r.IntOrNull("num_key_value_heads") ?? heads;
        if (kvHeads <= 0 || heads % kvHeads != 0)
            throw new CheckpointFormatException(r.Source, $"num_key_value_heads {kvHeads} does not divide num_attention_heads {heads}");
        if (r.DoubleOrNull("partial_rotary_factor") is double partial && partial != 1.0)
            throw new CheckpointFormatException(r.Source, $"partial_rotary_factor {partial} is not supported (the LLaMA family rotates every dimension of a head)");

        // Which linear layers carry a bias is fixed per model type in Hugging Face's modules: LlamaAttention and LlamaMLP
        // follow attention_bias and mlp_bias, Qwen2Attention has q/k/v biases and none on o_proj, Mistral none at all.
        bool attentionBias = modelType == "llama" && (r.BoolOrNull("attention_bias") ?? false);
        return new LlamaSettings
        {
            HeadDim = headDim,
            KeyValueHeads = kvHeads,
            QueryKeyValueBias = modelType == "qwen2" || attentionBias,
            OutputBias = attentionBias,
            MlpBias = modelType == "llama" && (r.BoolOrNull("mlp_bias") ?? false),
            Rope = ReadRope(r),
            SlidingWindows = ReadSlidingWindows(r, modelType, layers),
        };
    }

    /// <summary>
    /// rope_theta (default 10000) and rope_scaling as LlamaRotaryEmbedding reads them ("rope_type", or the older
    /// "type"), or Transformers 5's rope_parameters, which holds both.
    /// </summary>
    static LlamaRope ReadRope(ConfigJson r)
    {
        string field = r.Raw["rope_parameters"] is JsonObject ? "rope_parameters" : "rope_scaling";
        var node = r.Raw[field];
        double theta = (node as JsonObject)?["rope_theta"] is JsonNode inner ? Number(r, inner, $"{field}.rope_theta") : r.DoubleOrNull("rope_theta") ?? 10000.0;
        if (theta <= 0) throw new CheckpointFormatException(r.Source, $"rope_theta must be positive (got {theta})");
        if (node is null) return new LlamaRope("default", theta);
        if (node is not JsonObject scaling) throw new CheckpointFormatException(r.Source, $"{field} must be an object or null (got {node.ToJsonString()})");
        string? type = Text(scaling["rope_type"]) ?? Text(scaling["type"]);
        if (type is null && field == "rope_parameters") type = "default";
        if (type is null) throw new CheckpointFormatException(r.Source, $"{field} names no 'rope_type' (or 'type'): {scaling.ToJsonString()}");
        if (!LlamaRope.Supported.Contains(type))
            throw new CheckpointFormatException(r.Source,
                $"{field} type '{type}' is not supported (supported: {string.Join(", ", LlamaRope.Supported)})");
        double Required(string key) => scaling[key] is JsonNode value ? Number(r, value, $"{field}.{key}")
            : throw new CheckpointFormatException(r.Source, $"{field} of type '{type}' lacks '{key}'");
        var rope = type switch
        {
            "linear" => new LlamaRope(type, theta, Factor: Required("factor")),
            "llama3" => new LlamaRope(type, theta, Factor: Required("factor"), LowFreqFactor: Required("low_freq_factor"),
                HighFreqFactor: Required("high_freq_factor"), OriginalMaxPositions: (int)Required("original_max_position_embeddings")),
            _ => new LlamaRope("default", theta),
        };
        if (rope.Factor <= 0) throw new CheckpointFormatException(r.Source, $"{field}.factor must be positive (got {rope.Factor})");
        if (type == "llama3" && rope.HighFreqFactor <= rope.LowFreqFactor)
            throw new CheckpointFormatException(r.Source, $"{field}.high_freq_factor ({rope.HighFreqFactor}) must exceed low_freq_factor ({rope.LowFreqFactor})");
        return rope;
    }

    /// <summary>
    /// Each layer's window. Mistral: <c>sliding_window</c> on every layer (MistralConfig's default 4096 when the field
    /// is absent, none when it is null). Qwen2: only with <c>use_sliding_window</c>, on the layers <c>layer_types</c>
    /// marks "sliding_attention", or without it those from <c>max_window_layers</c> (default 28) on, as Qwen2Config
    /// builds layer_types. Llama: none.
    /// </summary>
    static IReadOnlyList<int?> ReadSlidingWindows(ConfigJson r, string modelType, int layers)
    {
        var none = new int?[layers];
        int? Window() => r.Raw.ContainsKey("sliding_window") ? r.IntOrNull("sliding_window") : 4096;
        int? window;
        switch (modelType)
        {
            case "mistral":
                window = Window();
                break;
            case "qwen2":
                if (r.BoolOrNull("use_sliding_window") != true) return none;
                window = Window();
                break;
            default:
                return none;
        }
        if (window is null) return none;
        if (window < 1) throw new CheckpointFormatException(r.Source, $"sliding_window must be at least 1 (got {window})");
        if (modelType == "mistral") return Enumerable.Repeat(window, layers).ToArray();
        if (r.Raw["layer_types"] is JsonArray types)
        {
            if (types.Count != layers)
                throw new CheckpointFormatException(r.Source, $"layer_types lists {types.Count} layers but num_hidden_layers is {layers}");
            return types.Select((t, i) => Text(t) switch
            {
                "sliding_attention" => window,
                "full_attention" => (int?)null,
                var other => throw new CheckpointFormatException(r.Source, $"layer_types[{i}] '{other}' is not 'full_attention' or 'sliding_attention'"),
            }).ToArray();
        }
        int fullLayers = r.IntOrNull("max_window_layers") ?? 28;
        return Enumerable.Range(0, layers).Select(i => i >= fullLayers ? window : null).ToArray();
    }

    static string? Text(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    static double Number(ConfigJson r, JsonNode node, string name) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out var d) ? d
        : node is JsonValue w && w.TryGetValue<int>(out var i) ? i
        : throw new CheckpointFormatException(r.Source, $"{name} is not a number ({node.ToJsonString()})");
}
