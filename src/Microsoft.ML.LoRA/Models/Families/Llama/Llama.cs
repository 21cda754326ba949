using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.LoRA.Models;

// LLaMA, Mistral and Qwen2 for sequence classification, as Hugging Face's LlamaForSequenceClassification,
// MistralForSequenceClassification and Qwen2ForSequenceClassification (modeling_llama.py, modeling_mistral.py,
// modeling_qwen2.py): model.{embed_tokens, layers.N.{input_layernorm, self_attn.{q_proj, k_proj, v_proj, o_proj},
// post_attention_layernorm, mlp.{gate_proj, up_proj, down_proj}}, norm}, score (no bias). A pre-norm causal decoder
// with RMSNorm, rotary position embeddings, grouped-query attention and a SwiGLU feed-forward, read at each example's
// last real token. The three differ only in what LlamaSettings reads: biases, the rotary scaling, sliding windows.

/// <summary>weight · x / sqrt(mean(x²) + eps), computed in float32 (HF: LlamaRMSNorm).</summary>
public sealed class LlamaRMSNorm : nn.Module<Tensor, Tensor>
{
    readonly Parameter weight;
    readonly double _eps;

    public LlamaRMSNorm(long hidden, double eps) : base("norm")
    {
        weight = new Parameter(torch.ones(hidden), requires_grad: true);
        register_parameter("weight", weight);
        _eps = eps;
    }

    public override Tensor forward(Tensor x)
    {
        // Hugging Face upcasts to float32 for the statistics and casts back before the weight.
        using var x32 = x.to_type(ScalarType.Float32);
        using var squares = x32.square();
        using var variance = squares.mean(new long[] { -1 }, keepdim: true);
        using Scalar eps = _eps;
        using var shifted = variance.add(eps);
        using var inverse = shifted.rsqrt();
        using var normed = x32.mul(inverse);
        using var back = normed.to_type(x.dtype);
        return weight.mul(back);
    }
}

/// <summary>
/// Rotary position embeddings (HF: LlamaRotaryEmbedding.forward, rotate_half, apply_rotary_pos_emb): the pair of
/// dimensions (d, d + headDim/2) of each head is turned by position · frequency. Not a module: it has no parameters,
/// and its frequencies are recomputed from the settings, so nothing is saved or loaded for it (HF's inv_freq is a
/// non-persistent buffer; a checkpoint that holds one is ignored).
/// </summary>
internal sealed class LlamaRotaryEmbedding(LlamaRope rope, int headDim)
{
    readonly float[] _inverseFrequencies = rope.InverseFrequencies(headDim);

    /// <summary>
    /// <paramref name="x"/> [batch, n, heads·headDim] turned at <paramref name="positions"/> (int64 [batch or 1, n]):
    /// x·cos + rotate_half(x)·sin per head, with cos and sin of cat(freqs, freqs) computed in float32.
    /// </summary>
    public Tensor Apply(Tensor x, Tensor positions)
    {
        long batch = x.shape[0], n = x.shape[1];
        long heads = x.shape[2] / headDim;
        using var inverse = torch.tensor(_inverseFrequencies, device: x.device);                     // [headDim/2]
        using var at = positions.to_type(ScalarType.Float32).unsqueeze(-1);                           // [b, n, 1]
        using var freqs = at.mul(inverse);                                                           // [b, n, headDim/2]
        using var emb = torch.cat(new[] { freqs, freqs }, -1);                                        // [b, n, headDim]
        using var cos32 = emb.cos();
        using var sin32 = emb.sin();
        using var cosTyped = cos32.to_type(x.dtype);
        using var sinTyped = sin32.to_type(x.dtype);
        using var cos = cosTyped.unsqueeze(2);                                                       // [b, n, 1, headDim]
        using var sin = sinTyped.unsqueeze(2);
        using var split = x.view(batch, n, heads, headDim);
        using var rotated = RotateHalf(split);
        using var turned = split.mul(cos);
        using var shifted = rotated.mul(sin);
        using var sum = turned.add(shifted);
        return sum.reshape(batch, n, heads * headDim);
    }

    /// <summary>cat(-x2, x1) of the halves x1, x2 of the last dimension (HF: rotate_half).</summary>
    static Tensor RotateHalf(Tensor x)
    {
        long half = x.shape[^1] / 2;
        using var first = x.narrow(-1, 0, half);
        using var second = x.narrow(-1, half, half);
        using var negated = second.neg();
        return torch.cat(new[] { negated, first }, -1);
    }
}

/// <summary>
/// Causal grouped-query self-attention with rotary positions (HF: LlamaAttention with eager_attention_forward, whose
/// repeat_kv is Attention.Run's keyValueHeads), optionally within a sliding window (Mistral, Qwen2's sliding layers).
/// </summary>
public sealed class LlamaAttention : nn.Module<Tensor, Tensor?, Tensor>
{
    readonly LoraLinear q_proj, k_proj, v_proj, o_proj;
    readonly LlamaRotaryEmbedding _rotary;
    readonly int _heads, _keyValueHeads;
    readonly int? _window;
    readonly double _dropout;

    public LlamaAttention(TransformerConfig config, LlamaSettings settings, int layerIndex) : base("self_attn")
    {
        long hidden = config.HiddenSize, queryWidth = (long)config.NumHeads * settings.HeadDim, keyValueWidth = (long)settings.KeyValueHeads * settings.HeadDim;
        q_proj = new LoraLinear(hidden, queryWidth, hasBias: settings.QueryKeyValueBias);
        k_proj = new LoraLinear(hidden, keyValueWidth, hasBias: settings.QueryKeyValueBias);
        v_proj = new LoraLinear(hidden, keyValueWidth, hasBias: settings.QueryKeyValueBias);
        o_proj = new LoraLinear(queryWidth, hidden, hasBias: settings.OutputBias);
        register_module("q_proj", q_proj);
        register_module("k_proj", k_proj);
        register_module("v_proj", v_proj);
        register_module("o_proj", o_proj);
        _rotary = new LlamaRotaryEmbedding(settings.Rope, settings.HeadDim);
        _heads = config.NumHeads;
        _keyValueHeads = settings.KeyValueHeads;
        _window = settings.SlidingWindows[layerIndex];
        _dropout = config.AttentionDropout;
    }

    public override Tensor forward(Tensor x, Tensor? mask) => Attend(x, x, mask, null);

    /// <summary>
    /// Rows attending to every position of x. The keys are turned at their positions before attention, so they cannot
    /// be folded into the queries (Attention.ReadRows) as BERT's and GPT-2's are: the key projection runs over x.
    /// </summary>
    /// <param name="rows">All of x, or a head's read rows [batch, r, hidden].</param>
    /// <param name="x">The layer's (normed) input [batch, seq, hidden], whose every position gives a key and a value.</param>
    /// <param name="mask">Boolean [batch, 1, 1 or r, seq] that holds causality, or null for plain causal attention (rows must then be x).</param>
    /// <param name="rowPositions">Where the rows sit, int64 [batch, r]; null when rows is x.</param>
    internal Tensor Attend(Tensor rows, Tensor x, Tensor? mask, Tensor? rowPositions)
    {
        bool allRows = rowPositions is null;
        if (!allRows && mask is null) throw new ArgumentNullException(nameof(mask), "attention for a subset of rows needs an explicit causal mask");
        long seq = x.shape[1];
        using var keyPositions = PositionIds.Row(seq, x.device);
        // Hugging Face numbers positions 0 .. seq-1 whatever the padding (cache_position), so the read row of a
        // right-padded example sits at its own index.
        var queryPositions = rowPositions ?? keyPositions;
        using var qLinear = q_proj.forward(rows);
        using var q = _rotary.Apply(qLinear, queryPositions);
        using var kLinear = k_proj.forward(x);
        using var k = _rotary.Apply(kLinear, keyPositions);
        using var v = v_proj.forward(x);
        using var windowed = _window is int window ? CausalMask.Windowed(mask, rowPositions, seq, window, x.device) : null;
        var effective = windowed ?? mask;
        using var context = Attention.Run(q, k, v, _heads, effective, _dropout, training, causal: effective is null, keyValueHeads: _keyValueHeads);
        return o_proj.forward(context);
    }
}

/// <summary>down_proj(silu(gate_proj(x)) · up_proj(x)) (HF: LlamaMLP, SwiGLU).</summary>
public sealed class LlamaMLP : nn.Module<Tensor, Tensor>
{
    readonly LoraLinear gate_proj, up_proj, down_proj;

    public LlamaMLP(TransformerConfig config, LlamaSettings settings) : base("mlp")
    {
        gate_proj = new LoraLinear(config.HiddenSize, config.IntermediateSize, hasBias: settings.MlpBias);
        up_proj = new LoraLinear(config.HiddenSize, config.IntermediateSize, hasBias: settings.MlpBias);
        down_proj = new LoraLinear(config.IntermediateSize, config.HiddenSize, hasBias: settings.MlpBias);
        register_module("gate_proj", gate_proj);
        register_module("up_proj", up_proj);
        register_module("down_proj", down_proj);
    }

    public override Tensor forward(Tensor x)
    {
        using var gate = gate_proj.forward(x);
        using var activated = F.silu(gate);
        using var up = up_proj.forward(x);
        using var product = activated.mul(up);
        return down_proj.forward(product);
    }
}

/// <summary>
/// One pre-norm decoder layer (HF: LlamaDecoderLayer): x + self_attn(input_layernorm(x)), then
/// + mlp(post_attention_layernorm(·)).
/// </summary>
public sealed class LlamaDecoderLayer : TransformerLayer
{
    readonly LlamaRMSNorm input_layernorm, post_attention_layernorm;
    readonly LlamaAttention self_attn;
    readonly LlamaMLP mlp;

    public LlamaDecoderLayer(TransformerConfig config, LlamaSettings settings, int layerIndex) : base("layer", config.IntermediateSize)
    {
        input_layernorm = new LlamaRMSNorm(config.HiddenSize, config.LayerNormEps);
        self_attn = new LlamaAttention(config, settings, layerIndex);
        post_attention_layernorm = new LlamaRMSNorm(config.HiddenSize, config.LayerNormEps);
        mlp = new LlamaMLP(config, settings);
        register_module("input_layernorm", input_layernorm);
        register_module("self_attn", self_attn);
        register_module("post_attention_layernorm", post_attention_layernorm);
        register_module("mlp", mlp);
    }

    protected internal override Tensor Attend(Tensor rows, Tensor x, Tensor? mask) => Attend(rows, x, mask, null);

    /// <remarks>For rows other than x itself the mask must carry causality and <paramref name="rowPositions"/> their places.</remarks>
    protected internal override Tensor Attend(Tensor rows, Tensor x, Tensor? mask, Tensor? rowPositions)
    {
        if (rowPositions is null && !ReferenceEquals(rows, x)) throw new ArgumentNullException(nameof(rowPositions), "rows other than x need their positions");
        using var normed = input_layernorm.forward(x);
        using var normedRows = rowPositions is null ? null : input_layernorm.forward(rows);   // RMSNorm works per position
        using var attended = self_attn.Attend(normedRows ?? normed, normed, mask, rowPositions);
        return attended.add(rows, Scalars.One);
    }

    protected internal override Tensor FeedForward(Tensor h) => PreNormResidual(post_attention_layernorm, mlp, h);
}

/// <summary>Token embeddings, the decoder layers and the final RMSNorm (HF: LlamaModel, the "model." prefix).</summary>
public sealed class LlamaModel : TransformerModel
{
    readonly Embedding embed_tokens;
    readonly LayerStack<LlamaDecoderLayer> layers;
    readonly LlamaRMSNorm norm;

    public LlamaModel(TransformerConfig config) : this(config, LlamaSettings.Of(config))
    {
    }

    public LlamaModel(TransformerConfig config, LlamaSettings settings) : base("model")
    {
        // HF also gives the embedding padding_idx = pad_token_id, which zeroes that row's gradient; like the other
        // families here the table has none (it is frozen under LoRA, and a checkpoint supplies the row).
        embed_tokens = Embeddings.Normal(config.VocabSize, config.HiddenSize);
        int index = 0;
        layers = new LayerStack<LlamaDecoderLayer>(config.NumLayers, () => new LlamaDecoderLayer(config, settings, index++));
        norm = new LlamaRMSNorm(config.HiddenSize, config.LayerNormEps);
        register_module("embed_tokens", embed_tokens);
        register_module("layers", layers);
        register_module("norm", norm);
    }

    /// <summary>The token embeddings; no positions are added (they enter as rotations in attention), and no dropout.</summary>
    protected override Tensor Embed(ModelInput input) => embed_tokens.forward(input.InputIds);

    private protected override ILayerStack Layers => layers;

    protected override Tensor? LayerMask(ModelInput input) => CausalMask.ForPadding(input.AttentionMask);

    protected override Tensor AfterLayers(Tensor last) => norm.forward(last);
}

/// <summary>
/// The LLaMA-family decoder with a bias-free score layer read at each example's last real token. Hugging Face finds
/// that token as the last one not equal to pad_token_id; here it is the last one the attention mask marks real, which
/// is the same token for right-padded batches whose real tokens are not the pad token, and needs no pad token at all.
/// </summary>
public sealed class LlamaForSequenceClassification : SequenceClassifier
{
    readonly LlamaModel model;
    readonly LoraLinear score;

    public LlamaForSequenceClassification(TransformerConfig config, int numLabels) : base(ClassName(config.ModelType), config, numLabels)
    {
        model = new LlamaModel(config);
        register_module("model", model);
        score = AddLabelLayer("score", hasBias: false);
    }

    /// <summary>Hugging Face's class for the model type (LlamaForSequenceClassification, ...).</summary>
    static string ClassName(string modelType) => modelType switch
    {
        "mistral" => "MistralForSequenceClassification",
        "qwen2" => "Qwen2ForSequenceClassification",
        _ => "LlamaForSequenceClassification",
    };

    public override Tensor forward(ModelInput input) => ScoreLastRealToken(model, score, input);
}
