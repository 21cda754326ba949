using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Dropout = Microsoft.ML.LoRA.Models.Kernels.Dropout;

namespace Microsoft.ML.LoRA.Models;

// BERT for sequence classification, module for module as Hugging Face's BertForSequenceClassification, so parameter
// names match checkpoints: bert.embeddings.*, bert.encoder.layer.N.{attention.self.{query,key,value},
// attention.output.{dense,LayerNorm}, intermediate.dense, output.{dense,LayerNorm}}, bert.pooler.dense, classifier.
// RoBERTa (Roberta.cs) reuses the embeddings (with padding-aware positions) and the encoder.

/// <summary>Dense, dropout, then LayerNorm over the residual sum (HF: BertSelfOutput and BertOutput).</summary>
public sealed class BertResidualOutput : nn.Module<Tensor, Tensor, Tensor>
{
    readonly LoraLinear dense;
    readonly LayerNorm LayerNorm;
    readonly double _dropout;

    public BertResidualOutput(TransformerConfig config, int inFeatures) : base("output")
    {
        dense = new LoraLinear(inFeatures, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        register_module("dense", dense);
        register_module("LayerNorm", LayerNorm);
        _dropout = config.HiddenDropout;
    }

    public override Tensor forward(Tensor hidden, Tensor residual)
    {
        using var projected = dense.forward(hidden);
        using var dropped = Dropout.Apply(projected, _dropout, training);
        dropped.add_(residual, Scalars.One);
        return LayerNorm.forward(dropped);
    }
}

/// <summary>
/// Self-attention then its output projection over the residual (HF: attention = self + output). DeBERTa's layer is
/// BERT's with disentangled self-attention in place of <see cref="SelfAttention"/>, so it builds this with its own.
/// </summary>
public sealed class BertAttention : nn.Module<Tensor, Tensor?, Tensor>
{
    readonly nn.Module<Tensor, Tensor?, Tensor> self;   // an IRowAttention
    readonly BertResidualOutput output;

    public BertAttention(TransformerConfig config) : this(config, new SelfAttention("self", config, ("query", "key", "value", null)))
    {
    }

    /// <param name="config">Hidden size, dropout and LayerNorm epsilon of the output projection.</param>
    /// <param name="self">The self-attention, registered as <c>self</c>.</param>
    internal BertAttention(TransformerConfig config, IRowAttention self) : base("attention")
    {
        this.self = (nn.Module<Tensor, Tensor?, Tensor>)self;
        output = new BertResidualOutput(config, config.HiddenSize);
        register_module("self", this.self);
        register_module("output", output);
    }

    public override Tensor forward(Tensor x, Tensor? keyMask) => Attend(x, x, keyMask);

    /// <summary>The attention block's output at <paramref name="rows"/>, keys and values from every position of <paramref name="x"/>.</summary>
    internal Tensor Attend(Tensor rows, Tensor x, Tensor? keyMask)
    {
        using var context = ((IRowAttention)self).Attend(rows, x, keyMask);
        return output.forward(context, rows);
    }
}

/// <summary>The feed-forward up-projection and activation (HF: intermediate).</summary>
public sealed class BertIntermediate : nn.Module<Tensor, Tensor>
{
    readonly LoraLinear dense;
    readonly string _activation;

    public BertIntermediate(TransformerConfig config) : base("intermediate")
    {
        dense = new LoraLinear(config.HiddenSize, config.IntermediateSize);
        register_module("dense", dense);
        _activation = config.Activation;
    }

    public override Tensor forward(Tensor x)
    {
        using var h = dense.forward(x);
        return Activations.Apply(_activation, h);
    }
}

/// <summary>One post-norm transformer layer.</summary>
public sealed class BertLayer : TransformerLayer
{
    readonly BertAttention attention;
    readonly BertIntermediate intermediate;
    readonly BertResidualOutput output;

    public BertLayer(TransformerConfig config) : this(config, new BertAttention(config))
    {
    }

    /// <summary>A BERT layer around another attention block (DeBERTa's).</summary>
    internal BertLayer(TransformerConfig config, BertAttention attention) : base("layer", config.IntermediateSize)
    {
        this.attention = attention;
        intermediate = new BertIntermediate(config);
        output = new BertResidualOutput(config, config.IntermediateSize);
        register_module("attention", attention);
        register_module("intermediate", intermediate);
        register_module("output", output);
    }

    protected internal override Tensor Attend(Tensor rows, Tensor x, Tensor? keyMask) => attention.Attend(rows, x, keyMask);

    /// <summary>intermediate, then output over the residual: position-wise (HF: feed_forward_chunk).</summary>
    protected internal override Tensor FeedForward(Tensor attended)
    {
        using var up = intermediate.forward(attended);
        return output.forward(up, attended);
    }
}

/// <summary>tanh(dense(hidden state of the first token)) (HF: pooler).</summary>
public sealed class BertPooler : nn.Module<Tensor, Tensor>
{
    readonly LoraLinear dense;

    public BertPooler(TransformerConfig config) : base("pooler")
    {
        dense = new LoraLinear(config.HiddenSize, config.HiddenSize);
        register_module("dense", dense);
    }

    public override Tensor forward(Tensor hidden)
    {
        using var first = hidden.select(1, 0);
        using var projected = dense.forward(first);
        return projected.tanh();
    }
}

/// <summary>Embeddings, encoder and (optionally) pooler (HF: BertModel, the "bert." prefix).</summary>
public sealed class BertModel : TransformerModel
{
    readonly BertEmbeddings embeddings;
    readonly EncoderStack<BertLayer> encoder;
    readonly BertPooler? pooler;

    public BertModel(TransformerConfig config, bool addPooler, long? paddingIdxForPositions = null) : base("bert")
    {
        embeddings = new BertEmbeddings(config, paddingIdxForPositions);
        encoder = new EncoderStack<BertLayer>("encoder", config.NumLayers, () => new BertLayer(config));
        register_module("embeddings", embeddings);
        register_module("encoder", encoder);
        if (addPooler)
        {
            pooler = new BertPooler(config);
            register_module("pooler", pooler);
        }
    }

    protected override Tensor Embed(ModelInput input) => embeddings.forward(input);

    private protected override ILayerStack Layers => encoder.Layers;

    /// <summary>The pooled [CLS] representation [batch, hidden], from hidden states [batch, seq or 1, hidden].</summary>
    public Tensor Pool(Tensor hidden) =>
        pooler?.forward(hidden) ?? throw new InvalidOperationException("this model was built without a pooler");
}

/// <summary>BERT with a dropout + linear classifier over the pooled [CLS] state.</summary>
public sealed class BertForSequenceClassification : SequenceClassifier
{
    readonly BertModel bert;
    readonly LoraLinear classifier;

    public BertForSequenceClassification(TransformerConfig config, int numLabels) : base("BertForSequenceClassification", config, numLabels)
    {
        bert = new BertModel(config, addPooler: true);
        register_module("bert", bert);
        classifier = AddLabelLayer("classifier");
    }

    public override Tensor forward(ModelInput input)
    {
        using var first = bert.FirstTokenState(input);
        using var pooled = bert.Pool(first);
        return Classify(classifier, pooled);
    }
}
