using Microsoft.ML.LoRA.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using Microsoft.ML.LoRA.Models.Kernels;
using Dropout = Microsoft.ML.LoRA.Models.Kernels.Dropout;

namespace Microsoft.ML.LoRA.Models;

// BERT for sequence classification, module for module as Hugging Face's BertForSequenceClassification, so parameter
// names match checkpoints: bert.embeddings.*, bert.encoder.layer.N.{attention.self.{query,key,value},
// attention.output.{dense,LayerNorm}, intermediate.dense, output.{dense,LayerNorm}}, bert.pooler.dense, classifier.
// RoBERTa (Roberta.cs) reuses the embeddings (with padding-aware positions) and the encoder.

/// <summary>Word + position + token-type embeddings, then LayerNorm and dropout.</summary>
public sealed class BertEmbeddings : nn.Module<ModelInput, Tensor>
{
    readonly Embedding word_embeddings, position_embeddings;
    readonly Embedding? token_type_embeddings;
    readonly LayerNorm LayerNorm;
    readonly double _dropout;
    readonly long? _paddingIdxForPositions;

    /// <param name="config">Model configuration.</param>
    /// <param name="paddingIdxForPositions">RoBERTa: positions count real tokens from padding_idx + 1.</param>
    public BertEmbeddings(TransformerConfig config, long? paddingIdxForPositions = null) : base("embeddings")
    {
        word_embeddings = NewEmbedding(config.VocabSize, config.HiddenSize);
        position_embeddings = NewEmbedding(config.MaxPositions, config.HiddenSize);
        register_module("word_embeddings", word_embeddings);
        register_module("position_embeddings", position_embeddings);
        if (config.TypeVocabSize > 0)
        {
            token_type_embeddings = NewEmbedding(config.TypeVocabSize, config.HiddenSize);
            register_module("token_type_embeddings", token_type_embeddings);
        }
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        register_module("LayerNorm", LayerNorm);
        _dropout = config.EmbeddingDropout;
        _paddingIdxForPositions = paddingIdxForPositions;
    }

    internal static Embedding NewEmbedding(long count, long dim)
    {
        lock (TorchRandomLock.Sync)   // both draw from libtorch's global generator
        {
            var e = nn.Embedding(count, dim);
            using (torch.no_grad()) e.weight!.normal_(0, 0.02);
            return e;
        }
    }

    public override Tensor forward(ModelInput input)
    {
        var ids = input.InputIds;
        long seq = ids.shape[1];
        Tensor positions;
        if (_paddingIdxForPositions is long pad)
        {
            using Scalar padScalar = pad;
            using var notPad = ids.ne(padScalar).to_type(ScalarType.Int64);
            using var counted = notPad.cumsum(1);
            positions = counted.mul(notPad).add_(padScalar);
        }
        else
        {
            positions = PositionIds.Row(seq, ids.device);
        }
        using (positions)
        {
            var x = word_embeddings.forward(ids);
            using (var p = position_embeddings.forward(positions)) x.add_(p, Scalars.One);
            if (token_type_embeddings is not null)
            {
                using var zeros = input.TokenTypeIds is null ? torch.zeros_like(ids) : null;
                using var t = token_type_embeddings.forward(input.TokenTypeIds ?? zeros!);
                x.add_(t, Scalars.One);
            }
            using (x)
            {
                using var normed = LayerNorm.forward(x);
                return Dropout.Apply(normed, _dropout, training);
            }
        }
    }
}

/// <summary>The query, key and value projections (HF: attention.self).</summary>
public sealed class BertSelfAttention : nn.Module<Tensor, Tensor?, Tensor>
{
    readonly LoraLinear query, key, value;
    readonly int _heads;
    readonly double _dropout;

    public BertSelfAttention(TransformerConfig config) : base("self")
    {
        query = new LoraLinear(config.HiddenSize, config.HiddenSize);
        key = new LoraLinear(config.HiddenSize, config.HiddenSize);
        value = new LoraLinear(config.HiddenSize, config.HiddenSize);
        register_module("query", query);
        register_module("key", key);
        register_module("value", value);
        _heads = config.NumHeads;
        _dropout = config.AttentionDropout;
    }

    public override Tensor forward(Tensor x, Tensor? keyMask) => Attend(x, x, keyMask);

    /// <summary><paramref name="rows"/> (some or all rows of <paramref name="x"/>) attend to every position of x.</summary>
    internal Tensor Attend(Tensor rows, Tensor x, Tensor? keyMask)
    {
        using var q = query.forward(rows);
        if (Attention.TryReadRows(q, rows, x, key, value, _heads, keyMask, training) is { } folded) return folded;
        using var k = key.forward(x);
        using var v = value.forward(x);
        return Attention.Run(q, k, v, _heads, keyMask, _dropout, training);
    }
}

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

/// <summary>Self-attention then its output projection (HF: attention).</summary>
public sealed class BertAttention : nn.Module<Tensor, Tensor?, Tensor>
{
    readonly BertSelfAttention self;
    readonly BertResidualOutput output;

    public BertAttention(TransformerConfig config) : base("attention")
    {
        self = new BertSelfAttention(config);
        output = new BertResidualOutput(config, config.HiddenSize);
        register_module("self", self);
        register_module("output", output);
    }

    public override Tensor forward(Tensor x, Tensor? keyMask) => Attend(x, x, keyMask);

    /// <summary>The attention block's output at <paramref name="rows"/>, keys and values from every position of <paramref name="x"/>.</summary>
    internal Tensor Attend(Tensor rows, Tensor x, Tensor? keyMask)
    {
        using var context = self.Attend(rows, x, keyMask);
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
public sealed class BertLayer : nn.Module<Tensor, Tensor?, Tensor>, ITransformerLayer
{
    readonly BertAttention attention;
    readonly BertIntermediate intermediate;
    readonly BertResidualOutput output;
    readonly long _intermediateSize;

    public BertLayer(TransformerConfig config) : base("layer")
    {
        attention = new BertAttention(config);
        intermediate = new BertIntermediate(config);
        output = new BertResidualOutput(config, config.IntermediateSize);
        _intermediateSize = config.IntermediateSize;
        register_module("attention", attention);
        register_module("intermediate", intermediate);
        register_module("output", output);
    }

    public override Tensor forward(Tensor x, Tensor? keyMask) => ((ITransformerLayer)this).Rows(x, x, keyMask);

    Tensor ITransformerLayer.Rows(Tensor rows, Tensor x, Tensor? keyMask)
    {
        using var attended = attention.Attend(rows, x, keyMask);
        return TokenChunks.Map(attended, _intermediateSize, FeedForward);
    }

    /// <summary>intermediate, then output over the residual: position-wise (HF: feed_forward_chunk).</summary>
    Tensor FeedForward(Tensor attended)
    {
        using var up = intermediate.forward(attended);
        return output.forward(up, attended);
    }
}

/// <summary>The stack of layers (HF: encoder.layer.N).</summary>
public sealed class BertEncoder : nn.Module<Tensor, Tensor?, Tensor>, ICheckpointableStack
{
    readonly ModuleList<BertLayer> layer;

    public BertEncoder(TransformerConfig config) : base("encoder")
    {
        layer = nn.ModuleList(Enumerable.Range(0, config.NumLayers).Select(_ => new BertLayer(config)).ToArray());
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
public sealed class BertModel : nn.Module<ModelInput, Tensor>
{
    readonly BertEmbeddings embeddings;
    readonly BertEncoder encoder;
    readonly BertPooler? pooler;

    public BertModel(TransformerConfig config, bool addPooler, long? paddingIdxForPositions = null) : base("bert")
    {
        embeddings = new BertEmbeddings(config, paddingIdxForPositions);
        encoder = new BertEncoder(config);
        register_module("embeddings", embeddings);
        register_module("encoder", encoder);
        if (addPooler)
        {
            pooler = new BertPooler(config);
            register_module("pooler", pooler);
        }
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
        using var embedded = embeddings.forward(input);
        return encoder.Forward(embedded, keyMask, readout);
    }

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
        classifier = new LoraLinear(config.HiddenSize, numLabels);
        register_module("bert", bert);
        register_module("classifier", classifier);
    }

    public override Tensor forward(ModelInput input)
    {
        using var first = bert.FirstTokenState(input);
        using var pooled = bert.Pool(first);
        using var dropped = Dropout.Apply(pooled, Config.ClassifierDropout, training);
        return classifier.forward(dropped);
    }
}
