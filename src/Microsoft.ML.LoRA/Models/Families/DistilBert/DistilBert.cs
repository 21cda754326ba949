using Microsoft.ML.LoRA.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using Microsoft.ML.LoRA.Models.Kernels;
using Dropout = Microsoft.ML.LoRA.Models.Kernels.Dropout;

namespace Microsoft.ML.LoRA.Models;

// DistilBERT for sequence classification, as Hugging Face's DistilBertForSequenceClassification:
// distilbert.embeddings.{word_embeddings, position_embeddings, LayerNorm},
// distilbert.transformer.layer.N.{attention.{q_lin,k_lin,v_lin,out_lin}, sa_layer_norm, ffn.{lin1,lin2}, output_layer_norm},
// then pre_classifier -> ReLU -> dropout -> classifier over the first token.

/// <summary>Word + position embeddings, LayerNorm, dropout.</summary>
public sealed class DistilBertEmbeddings : nn.Module<Tensor, Tensor>
{
    readonly Embedding word_embeddings, position_embeddings;
    readonly LayerNorm LayerNorm;
    readonly double _dropout;

    public DistilBertEmbeddings(TransformerConfig config) : base("embeddings")
    {
        word_embeddings = BertEmbeddings.NewEmbedding(config.VocabSize, config.HiddenSize);
        position_embeddings = BertEmbeddings.NewEmbedding(config.MaxPositions, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        register_module("word_embeddings", word_embeddings);
        register_module("position_embeddings", position_embeddings);
        register_module("LayerNorm", LayerNorm);
        _dropout = config.EmbeddingDropout;
    }

    public override Tensor forward(Tensor ids)
    {
        using var positions = PositionIds.Row(ids.shape[1], ids.device);
        using var x = word_embeddings.forward(ids);
        using (var p = position_embeddings.forward(positions)) x.add_(p, Scalars.One);
        using var normed = LayerNorm.forward(x);
        return Dropout.Apply(normed, _dropout, training);
    }
}

/// <summary>Multi-head self-attention with its output projection.</summary>
public sealed class DistilBertAttention : nn.Module<Tensor, Tensor?, Tensor>
{
    readonly LoraLinear q_lin, k_lin, v_lin, out_lin;
    readonly int _heads;
    readonly double _dropout;

    public DistilBertAttention(TransformerConfig config) : base("attention")
    {
        q_lin = new LoraLinear(config.HiddenSize, config.HiddenSize);
        k_lin = new LoraLinear(config.HiddenSize, config.HiddenSize);
        v_lin = new LoraLinear(config.HiddenSize, config.HiddenSize);
        out_lin = new LoraLinear(config.HiddenSize, config.HiddenSize);
        register_module("q_lin", q_lin);
        register_module("k_lin", k_lin);
        register_module("v_lin", v_lin);
        register_module("out_lin", out_lin);
        _heads = config.NumHeads;
        _dropout = config.AttentionDropout;
    }

    public override Tensor forward(Tensor x, Tensor? keyMask) => Attend(x, x, keyMask);

    /// <summary><paramref name="rows"/> (some or all rows of <paramref name="x"/>) attend to every position of x.</summary>
    internal Tensor Attend(Tensor rows, Tensor x, Tensor? keyMask)
    {
        using var q = q_lin.forward(rows);
        using var context = Context(q, rows, x, keyMask);
        return out_lin.forward(context);
    }

    Tensor Context(Tensor q, Tensor rows, Tensor x, Tensor? keyMask)
    {
        if (Attention.TryReadRows(q, rows, x, k_lin, v_lin, _heads, keyMask, training) is { } folded) return folded;
        using var k = k_lin.forward(x);
        using var v = v_lin.forward(x);
        return Attention.Run(q, k, v, _heads, keyMask, _dropout, training);
    }
}

/// <summary>lin1 -> activation -> lin2 -> dropout.</summary>
public sealed class DistilBertFeedForward : nn.Module<Tensor, Tensor>
{
    readonly LoraLinear lin1, lin2;
    readonly string _activation;
    readonly double _dropout;

    public DistilBertFeedForward(TransformerConfig config) : base("ffn")
    {
        lin1 = new LoraLinear(config.HiddenSize, config.IntermediateSize);
        lin2 = new LoraLinear(config.IntermediateSize, config.HiddenSize);
        register_module("lin1", lin1);
        register_module("lin2", lin2);
        _activation = config.Activation;
        _dropout = config.HiddenDropout;
    }

    public override Tensor forward(Tensor x)
    {
        using var up = lin1.forward(x);
        using var activated = Activations.Apply(_activation, up);
        using var down = lin2.forward(activated);
        return Dropout.Apply(down, _dropout, training);
    }
}

/// <summary>One post-norm layer: attention + sa_layer_norm, ffn + output_layer_norm.</summary>
public sealed class DistilBertLayer : nn.Module<Tensor, Tensor?, Tensor>, ITransformerLayer
{
    readonly DistilBertAttention attention;
    readonly LayerNorm sa_layer_norm, output_layer_norm;
    readonly DistilBertFeedForward ffn;
    readonly long _intermediateSize;

    public DistilBertLayer(TransformerConfig config) : base("layer")
    {
        attention = new DistilBertAttention(config);
        sa_layer_norm = nn.LayerNorm(config.HiddenSize, 1e-12);
        ffn = new DistilBertFeedForward(config);
        output_layer_norm = nn.LayerNorm(config.HiddenSize, 1e-12);
        _intermediateSize = config.IntermediateSize;
        register_module("attention", attention);
        register_module("sa_layer_norm", sa_layer_norm);
        register_module("ffn", ffn);
        register_module("output_layer_norm", output_layer_norm);
    }

    public override Tensor forward(Tensor x, Tensor? keyMask) => ((ITransformerLayer)this).Rows(x, x, keyMask);

    Tensor ITransformerLayer.Rows(Tensor rows, Tensor x, Tensor? keyMask)
    {
        using var attended = attention.Attend(rows, x, keyMask);
        attended.add_(rows, Scalars.One);
        using var h = sa_layer_norm.forward(attended);
        using var ff = TokenChunks.Map(h, _intermediateSize, ffn.forward);
        ff.add_(h, Scalars.One);
        return output_layer_norm.forward(ff);
    }
}

/// <summary>Embeddings and the layer stack (HF: DistilBertModel, the "distilbert." prefix).</summary>
public sealed class DistilBertModel : nn.Module<ModelInput, Tensor>
{
    readonly DistilBertEmbeddings embeddings;
    readonly DistilBertTransformer transformer;

    public DistilBertModel(TransformerConfig config) : base("distilbert")
    {
        embeddings = new DistilBertEmbeddings(config);
        transformer = new DistilBertTransformer(config);
        register_module("embeddings", embeddings);
        register_module("transformer", transformer);
    }

    /// <summary>Returns the last hidden states [batch, seq, hidden].</summary>
    public override Tensor forward(ModelInput input) => Forward(input, readout: null);

    /// <summary>The first token's last hidden state, [batch, 1, hidden], computed without the rest of the last layer.</summary>
    internal Tensor FirstTokenState(ModelInput input)
    {
        using var readout = HeadReadout.FirstToken();
        return Forward(input, readout);
    }

    Tensor Forward(ModelInput input, HeadReadout? readout)
    {
        using var keyMask = Attention.KeyMask(input.AttentionMask);
        using var embedded = embeddings.forward(input.InputIds);
        return transformer.Forward(embedded, keyMask, readout);
    }
}

/// <summary>The layer stack (HF: transformer.layer.N).</summary>
public sealed class DistilBertTransformer : nn.Module<Tensor, Tensor?, Tensor>, ICheckpointableStack
{
    readonly ModuleList<DistilBertLayer> layer;

    public DistilBertTransformer(TransformerConfig config) : base("transformer")
    {
        layer = nn.ModuleList(Enumerable.Range(0, config.NumLayers).Select(_ => new DistilBertLayer(config)).ToArray());
        register_module("layer", layer);
    }

    /// <summary>Recompute each layer in the backward pass instead of keeping its activations (see <see cref="LayerCheckpointing"/>).</summary>
    public bool GradientCheckpointing { get; set; }

    public override Tensor forward(Tensor x, Tensor? keyMask) => Forward(x, keyMask, readout: null);

    /// <summary>
    /// The last hidden states: [batch, seq, hidden], or [batch, 1, hidden] at the rows of <paramref name="readout"/>
    /// when one is given (the last layer then computes only those rows).
    /// </summary>
    internal Tensor Forward(Tensor x, Tensor? keyMask, HeadReadout? readout) =>
        LayerCheckpointing.Stack(layer, x, keyMask, GradientCheckpointing && training, readout);
}

/// <summary>DistilBERT with pre_classifier -> ReLU -> dropout -> classifier over the first token.</summary>
public sealed class DistilBertForSequenceClassification : SequenceClassifier
{
    readonly DistilBertModel distilbert;
    readonly LoraLinear pre_classifier, classifier;

    public DistilBertForSequenceClassification(TransformerConfig config, int numLabels) : base("DistilBertForSequenceClassification", config, numLabels)
    {
        distilbert = new DistilBertModel(config);
        pre_classifier = new LoraLinear(config.HiddenSize, config.HiddenSize);
        classifier = new LoraLinear(config.HiddenSize, numLabels);
        register_module("distilbert", distilbert);
        register_module("pre_classifier", pre_classifier);
        register_module("classifier", classifier);
    }

    public override Tensor forward(ModelInput input)
    {
        using var state = distilbert.FirstTokenState(input);
        using var first = state.select(1, 0);
        using var projected = pre_classifier.forward(first);
        using var activated = F.relu(projected);
        using var dropped = Dropout.Apply(activated, Config.ClassifierDropout, training);
        return classifier.forward(dropped);
    }
}
