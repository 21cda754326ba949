using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Dropout = Microsoft.ML.LoRA.Models.Kernels.Dropout;

namespace Microsoft.ML.LoRA.Models;

// GPT-2 for sequence classification, as Hugging Face's GPT2ForSequenceClassification:
// transformer.{wte, wpe, h.N.{ln_1, attn.{c_attn, c_proj}, ln_2, mlp.{c_fc, c_proj}}, ln_f}, score (no bias).
// Linear layers are Conv1D: weights stored [in, out]. Attention is causal; the logits are read at the last real token.

/// <summary>Causal self-attention with the fused query/key/value projection c_attn.</summary>
public sealed class Gpt2Attention : nn.Module<Tensor, Tensor?, Tensor>
{
    readonly LoraLinear c_attn, c_proj;
    readonly int _heads;
    readonly long _hidden;
    readonly double _attentionDropout, _residualDropout;
    readonly double _queryFactor;

    /// <param name="config">The model's config.</param>
    /// <param name="layerIndex">The layer's index (scale_attn_by_inverse_layer_idx scales by it).</param>
    public Gpt2Attention(TransformerConfig config, int layerIndex = 0) : base("attn")
    {
        _hidden = config.HiddenSize;
        c_attn = new LoraLinear(_hidden, 3 * _hidden, fanInFanOut: true);
        c_proj = new LoraLinear(_hidden, _hidden, fanInFanOut: true);
        register_module("c_attn", c_attn);
        register_module("c_proj", c_proj);
        _heads = config.NumHeads;
        _attentionDropout = config.AttentionDropout;
        _residualDropout = config.HiddenDropout;
        _queryFactor = Gpt2AttentionScale.QueryFactor(config, layerIndex);
    }

    /// <summary>The queries as the attention kernel should see them (<see cref="Gpt2AttentionScale"/>): new, or an alias.</summary>
    Tensor Scaled(Tensor q) => _queryFactor == 1.0 ? q.alias() : q.mul(_queryFactor);

    /// <param name="x">[batch, seq, hidden]</param>
    /// <param name="mask">Null: plain causal attention. Otherwise a boolean [batch, 1, seq, seq] mask that already includes causality.</param>
    public override Tensor forward(Tensor x, Tensor? mask) => Attend(x, x, mask);

    /// <summary>
    /// <paramref name="rows"/> (some or all rows of <paramref name="x"/>) attend to x. For rows other than x itself
    /// <paramref name="mask"/> must be given ([batch, 1, rows, seq] with causality), as plain causal attention needs
    /// a query at every position.
    /// </summary>
    internal Tensor Attend(Tensor rows, Tensor x, Tensor? mask)
    {
        bool allRows = ReferenceEquals(rows, x);
        if (!allRows && mask is null) throw new ArgumentNullException(nameof(mask), "attention for a subset of rows needs an explicit causal mask");
        using var context = allRows || !Attention.FoldsKeysAndValues(rows, x, _heads, training) ? Context(rows, x, mask, allRows) : FoldedContext(rows, x, mask!);
        using var projected = c_proj.forward(context);
        return Dropout.Apply(projected, _residualDropout, training);
    }

    Tensor Context(Tensor rows, Tensor x, Tensor? mask, bool allRows)
    {
        using var qkv = c_attn.forward(x);
        var parts = qkv.split(_hidden, 2);
        using var k = parts[1];
        using var v = parts[2];
        // For a subset of rows the fused projection runs once more on those rows only and keeps their query third.
        using var rowsQkv = allRows ? null : c_attn.forward(rows);
        using var q = allRows ? parts[0] : rowsQkv!.narrow(2, 0, _hidden);
        if (!allRows) parts[0].Dispose();
        using var scaled = Scaled(q);
        return Attention.Run(scaled, k, v, _heads, mask, _attentionDropout, training, causal: mask is null);
    }

    /// <summary>Inference for a few rows: the key and value thirds of c_attn folded away (<see cref="Attention.ReadRows"/>).</summary>
    Tensor FoldedContext(Tensor rows, Tensor x, Tensor mask)
    {
        using var weight = c_attn.EvalWeight(x);   // [3 hidden, hidden]
        if (weight is null) return Context(rows, x, mask, allRows: false);
        using var rowsQkv = c_attn.forward(rows);
        using var rowsQ = rowsQkv.narrow(2, 0, _hidden);
        using var q = Scaled(rowsQ);
        using var keyWeight = weight.narrow(0, _hidden, _hidden);
        using var valueWeight = weight.narrow(0, 2 * _hidden, _hidden);
        using var valueBias = c_attn.bias?.narrow(0, 2 * _hidden, _hidden);
        return Attention.ReadRows(q, x, keyWeight, valueWeight, valueBias, _heads, mask);
    }
}

/// <summary>One pre-norm block: x + attn(ln_1(x)), then + mlp(ln_2(x)).</summary>
public sealed class Gpt2Block : TransformerLayer
{
    readonly LayerNorm ln_1, ln_2;
    readonly Gpt2Attention attn;
    readonly FeedForward mlp;

    public Gpt2Block(TransformerConfig config, int layerIndex = 0) : base("block", config.IntermediateSize)
    {
        ln_1 = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        attn = new Gpt2Attention(config, layerIndex);
        ln_2 = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        mlp = new FeedForward("mlp", config, ("c_fc", "c_proj"));
        register_module("ln_1", ln_1);
        register_module("attn", attn);
        register_module("ln_2", ln_2);
        register_module("mlp", mlp);
    }

    /// <remarks>For rows other than x itself the mask must carry causality (see <see cref="Gpt2Attention.Attend"/>).</remarks>
    protected internal override Tensor Attend(Tensor rows, Tensor x, Tensor? mask)
    {
        using var n1 = ln_1.forward(x);
        using var n1Rows = ReferenceEquals(rows, x) ? null : ln_1.forward(rows);   // LayerNorm works per position
        using var a = attn.Attend(n1Rows ?? n1, n1, mask);
        return a.add(rows, Scalars.One);
    }

    protected internal override Tensor FeedForward(Tensor h) => PreNormResidual(ln_2, mlp, h);
}

/// <summary>Token and position embeddings, the blocks and the final LayerNorm (HF: GPT2Model, the "transformer." prefix).</summary>
public sealed class Gpt2Model : TransformerModel
{
    readonly Embedding wte, wpe;
    readonly LayerStack<Gpt2Block> h;
    readonly LayerNorm ln_f;
    readonly double _dropout;

    public Gpt2Model(TransformerConfig config) : base("transformer")
    {
        wte = Embeddings.Normal(config.VocabSize, config.HiddenSize);
        wpe = Embeddings.Normal(config.MaxPositions, config.HiddenSize);
        h = new LayerStack<Gpt2Block>(config.NumLayers, i => new Gpt2Block(config, i));
        ln_f = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        register_module("wte", wte);
        register_module("wpe", wpe);
        register_module("h", h);
        register_module("ln_f", ln_f);
        _dropout = config.EmbeddingDropout;
    }

    protected override Tensor Embed(ModelInput input)
    {
        var ids = input.InputIds;
        using var positions = PositionIds.Row(ids.shape[1], ids.device);
        using var tokens = wte.forward(ids);
        using (var p = wpe.forward(positions)) tokens.add_(p, Scalars.One);
        return Dropout.Apply(tokens, _dropout, training);
    }

    private protected override ILayerStack Layers => h;

    protected override Tensor? LayerMask(ModelInput input) => CausalMask.ForPadding(input.AttentionMask);

    protected override Tensor AfterLayers(Tensor last) => ln_f.forward(last);
}

/// <summary>GPT-2 with a bias-free score layer read at each example's last real token.</summary>
public sealed class Gpt2ForSequenceClassification : SequenceClassifier
{
    readonly Gpt2Model transformer;
    readonly LoraLinear score;

    public Gpt2ForSequenceClassification(TransformerConfig config, int numLabels) : base("GPT2ForSequenceClassification", config, numLabels)
    {
        transformer = new Gpt2Model(config);
        register_module("transformer", transformer);
        score = AddLabelLayer("score", hasBias: false);
    }

    public override Tensor forward(ModelInput input) => ScoreLastRealToken(transformer, score, input);
}
