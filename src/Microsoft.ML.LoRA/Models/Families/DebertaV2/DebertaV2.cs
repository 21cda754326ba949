using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Dropout = Microsoft.ML.LoRA.Models.Kernels.Dropout;

namespace Microsoft.ML.LoRA.Models;

// DeBERTa-v2 / v3 for sequence classification, module for module as Hugging Face's DebertaV2ForSequenceClassification
// (modeling_deberta_v2.py), so parameter names match checkpoints:
//   deberta.embeddings.{word_embeddings, position_embeddings?, token_type_embeddings?, embed_proj?, LayerNorm}
//   deberta.encoder.layer.N.{attention.self.{query_proj, key_proj, value_proj, pos_key_proj?, pos_query_proj?},
//                            attention.output.{dense, LayerNorm}, intermediate.dense, output.{dense, LayerNorm}}
//   deberta.encoder.{rel_embeddings?, LayerNorm?}, pooler.dense, classifier
// The residual blocks and the intermediate layer are BERT's (Bert.cs). What is DeBERTa's own is the disentangled
// attention: besides content·content, each query scores the relative position of each key through its content
// (c2p) and each key the relative position of the query (p2c), over one table of relative-position embeddings that
// every layer projects with its own query and key projections. The encoder computes the table and the position
// index once per forward pass (RelativePositionSource); the layers read them.

/// <summary>
/// Word (+ absolute position, + token type) embeddings, the projection to the hidden size, LayerNorm, the padding
/// zeroed, dropout (HF: DebertaV2Embeddings).
/// </summary>
internal sealed class DebertaV2Embeddings : nn.Module<ModelInput, Tensor>
{
    readonly Embedding word_embeddings;
    readonly Embedding? position_embeddings, token_type_embeddings;
    readonly LoraLinear? embed_proj;
    readonly LayerNorm LayerNorm;
    readonly double _dropout;

    public DebertaV2Embeddings(TransformerConfig config, DebertaV2Settings settings) : base("embeddings")
    {
        int width = settings.EmbeddingSize;
        word_embeddings = Embeddings.Normal(config.VocabSize, width);
        register_module("word_embeddings", word_embeddings);
        if (settings.PositionBiasedInput)
        {
            position_embeddings = Embeddings.Normal(config.MaxPositions, width);
            register_module("position_embeddings", position_embeddings);
        }
        if (config.TypeVocabSize > 0)
        {
            token_type_embeddings = Embeddings.Normal(config.TypeVocabSize, width);
            register_module("token_type_embeddings", token_type_embeddings);
        }
        if (width != config.HiddenSize)
        {
            embed_proj = new LoraLinear(width, config.HiddenSize, hasBias: false);
            register_module("embed_proj", embed_proj);
        }
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        register_module("LayerNorm", LayerNorm);
        _dropout = config.EmbeddingDropout;
    }

    public override Tensor forward(ModelInput input)
    {
        var ids = input.InputIds;
        using var x = word_embeddings.forward(ids);
        if (position_embeddings is not null)
        {
            using var positions = PositionIds.Row(ids.shape[1], ids.device);
            using var p = position_embeddings.forward(positions);
            x.add_(p, Scalars.One);
        }
        if (token_type_embeddings is not null)
        {
            using var zeros = input.TokenTypeIds is null ? torch.zeros_like(ids) : null;
            using var t = token_type_embeddings.forward(input.TokenTypeIds ?? zeros!);
            x.add_(t, Scalars.One);
        }
        using var projected = embed_proj?.forward(x);
        using var normed = LayerNorm.forward(projected ?? x);
        // As Hugging Face: the padding positions' embeddings are zeroed. Real tokens never attend to padding, so this
        // changes no logit; it keeps the padding rows of every layer what Hugging Face computes.
        using var mask = input.AttentionMask.to_type(normed.dtype).unsqueeze(-1);
        normed.mul_(mask);
        return Dropout.Apply(normed, _dropout, training);
    }
}

/// <summary>
/// The relative positions of the current forward pass, set by the encoder before its layers run and read by every
/// layer's attention: the c2p index of each (query, key) pair into the relative-embedding table, and that table
/// (rel_embeddings after encoder.LayerNorm, HF: get_rel_embedding) over the rows the index reaches.
/// </summary>
/// <remarks>
/// Held per thread, so a model scoring on several threads at once gives each pass its own. A pass's frame stays
/// until the same thread's next pass replaces it (or the model is disposed): with activation checkpointing the layers
/// run again in the backward pass, after the forward pass has returned, and read it then.
/// </remarks>
internal sealed class RelativePositionSource : IDisposable
{
    /// <summary>One pass's relative positions.</summary>
    /// <param name="Index">int64 [seq, seq]: for query i and key j, the row of <paramref name="Embeddings"/> for their relative position.</param>
    /// <param name="First">The first row of rel_embeddings that some pair reaches (Index counts from it).</param>
    /// <param name="Count">How many rows from <paramref name="First"/> the pairs reach.</param>
    /// <param name="Embeddings">get_rel_embedding()'s rows [First, First + Count), [Count, hidden]; null when each layer computes them itself.</param>
    internal sealed record Frame(Tensor Index, long First, long Count, Tensor? Embeddings) : IDisposable
    {
        public void Dispose()
        {
            Index.Dispose();
            Embeddings?.Dispose();
        }
    }

    readonly ThreadLocal<Frame?> _frames = new(trackAllValues: true);
    readonly Func<long, long, Tensor> _embeddings;
    bool _disposed;

    /// <param name="embeddings">get_rel_embedding() over rows [first, first + count): the encoder's table and norm.</param>
    public RelativePositionSource(Func<long, long, Tensor> embeddings)
    {
        _embeddings = embeddings;
    }

    /// <summary>This thread's current frame.</summary>
    public Frame Current => _frames.Value
        ?? throw new InvalidOperationException("a DeBERTa layer ran before its encoder set the relative positions of the pass");

    /// <summary>Makes <paramref name="frame"/> this thread's current one, disposing the one it replaces.</summary>
    public void Set(Frame frame)
    {
        _frames.Value?.Dispose();
        _frames.Value = frame;
    }

    /// <summary>The relative-embedding rows of <paramref name="frame"/>: the pass's shared table, or computed anew.</summary>
    public Tensor Embeddings(Frame frame) => frame.Embeddings?.alias() ?? _embeddings(frame.First, frame.Count);

    /// <remarks>TorchSharp may dispose a module more than once (through its parent and itself), so this runs once.</remarks>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var frame in _frames.Values) frame?.Dispose();
        _frames.Dispose();
    }
}

/// <summary>
/// Hugging Face's build_relative_position and make_log_bucket_position: the relative position of query i to key j,
/// i - j, mapped to log-spaced buckets beyond half the bucket count.
/// </summary>
internal static class RelativePositionBuckets
{
    /// <summary>
    /// build_relative_position(seq, seq, bucket_size, max_position): int64 [seq, seq], element (i, j) = i - j, or its
    /// bucket when both <paramref name="bucketSize"/> and <paramref name="maxPosition"/> are positive.
    /// </summary>
    public static Tensor Build(long seq, int bucketSize, int maxPosition, Device device)
    {
        using var ids = PositionIds.Row(seq, device);                 // [1, seq]
        using var queries = ids.transpose(0, 1);                      // [seq, 1]
        var relative = queries.sub(ids);                              // [seq, seq]
        if (bucketSize <= 0 || maxPosition <= 0) return relative;
        using (relative) return LogBuckets(relative, bucketSize, maxPosition);
    }

    /// <summary>
    /// make_log_bucket_position: distances up to bucket_size / 2 stay as they are, longer ones become
    /// sign · (ceil(log(|r| / mid) / log((max_position - 1) / mid) · (mid - 1)) + mid). Computed in float32 as
    /// Hugging Face computes it (torch's default dtype), since the ceiling of a value near an integer depends on it.
    /// </summary>
    internal static Tensor LogBuckets(Tensor relative, int bucketSize, int maxPosition)
    {
        int mid = bucketSize / 2;
        using Scalar midScalar = mid, negativeMid = -mid, midLess1 = mid - 1;
        using var sign = relative.sign();
        using var belowMid = relative.lt(midScalar);
        using var aboveNegativeMid = relative.gt(negativeMid);
        using var near = belowMid.logical_and(aboveNegativeMid);
        using var distance = relative.abs();
        using var absPos = distance.masked_fill(near, midLess1);      // int64, as Hugging Face's abs_pos
        using var ratio = absPos.to_type(ScalarType.Float32).div_(midScalar);
        using var logRatio = ratio.log();
        // torch.log(torch.tensor((max_position - 1) / mid)): the quotient in double, rounded to float32, then its log.
        using var span = torch.tensor((float)((maxPosition - 1) / (double)mid), ScalarType.Float32, relative.device);
        using var logSpan = span.log();
        using var logPos = logRatio.div_(logSpan).mul_(midLess1).ceil_().add_(midScalar);
        using var signedLog = logPos.mul_(sign);
        using var within = absPos.le(midScalar);
        using var asFloat = relative.to_type(ScalarType.Float32);
        using var bucketed = torch.where(within, asFloat, signedLog);
        return bucketed.to_type(ScalarType.Int64);
    }
}

/// <summary>
/// Disentangled self-attention (HF: DisentangledSelfAttention): content·content scores plus, with relative attention,
/// the c2p and p2c scores (HF: disentangled_attention_bias), all divided by √(head_dim · scale_factor), masked,
/// softmax, dropout, times the values.
/// </summary>
internal sealed class DisentangledSelfAttention : nn.Module<Tensor, Tensor?, Tensor>, IRowAttention
{
    // A tuple rather than fields of their own, so TorchSharp does not register them again under the field names (see SelfAttention).
    readonly (LoraLinear Query, LoraLinear Key, LoraLinear Value, LoraLinear? PositionKey, LoraLinear? PositionQuery) _layers;
    readonly RelativePositionSource? _positions;
    readonly DebertaV2Settings _settings;
    readonly int _heads;
    readonly long _headDim;
    readonly double _dropout, _positionDropout;

    public DisentangledSelfAttention(TransformerConfig config, DebertaV2Settings settings, RelativePositionSource? positions) : base("self")
    {
        LoraLinear Projection(string name)
        {
            var layer = new LoraLinear(config.HiddenSize, config.HiddenSize);
            register_module(name, layer);
            return layer;
        }
        var query = Projection("query_proj");
        var key = Projection("key_proj");
        var value = Projection("value_proj");
        // Separate position projections only with relative attention and without share_att_key, each for its term.
        bool own = settings.RelativeAttention && !settings.ShareAttentionKey;
        var positionKey = own && settings.ContentToPosition ? Projection("pos_key_proj") : null;
        var positionQuery = own && settings.PositionToContent ? Projection("pos_query_proj") : null;
        _layers = (query, key, value, positionKey, positionQuery);
        _positions = settings.RelativeScores ? positions : null;
        _settings = settings;
        _heads = config.NumHeads;
        _headDim = config.HeadDim;
        _dropout = config.AttentionDropout;
        _positionDropout = config.HiddenDropout;   // HF: pos_dropout = StableDropout(hidden_dropout_prob)
    }

    public override Tensor forward(Tensor x, Tensor? keyMask) => Attend(x, x, keyMask);

    /// <summary>
    /// <paramref name="rows"/> attending to every position of <paramref name="x"/>: [batch, rows, hidden]. Rows other
    /// than x itself are its first positions: the first-token head readout (<see cref="HeadReadout.FirstToken"/>), the
    /// only one this family's head uses; their relative positions are those of queries 0 .. rows - 1. The key and
    /// value projections are never folded away for a few rows (<see cref="Attention.ReadRows"/>): the p2c term needs
    /// every key's projection.
    /// </summary>
    public Tensor Attend(Tensor rows, Tensor x, Tensor? keyMask)
    {
        using var q = _layers.Query.forward(rows);
        using var k = _layers.Key.forward(x);
        using var v = _layers.Value.forward(x);
        using var bias = _positions is null ? null : RelativeScores(q, k, _positions);
        // Hugging Face divides q·kᵀ by √(head_dim · scale_factor); Attention.Run divides by √head_dim, so q comes
        // scaled by 1/√scale_factor.
        using Scalar queryScale = 1.0 / Math.Sqrt(_settings.ScaleFactor);
        using var scaledQ = _settings.ScaleFactor == 1 ? q.alias() : q.mul(queryScale);
        return Attention.Run(scaledQ, k, v, _heads, keyMask, _dropout, training, scoreBias: bias);
    }

    /// <summary>
    /// The c2p and p2c scores, already divided by √(head_dim · scale_factor): [batch, heads, queries, keys], an
    /// additive score term for <see cref="Attention.Run"/> (it needs a gradient when the projections train).
    /// </summary>
    /// <remarks>
    /// HF's disentangled_attention_bias with c2p_pos = clamp(r(i, j) + att_span, 0, 2·att_span - 1) for
    /// r(i, j) = build_relative_position's (i, j):
    /// c2p(i, j) = q_i · pos_key[c2p_pos(i, j)], and p2c(i, j) = k_j · pos_query[p2c_pos(j, i)], where Hugging Face's
    /// p2c_pos(j, i) = clamp(-r(j, i) + att_span) equals c2p_pos(i, j) because the bucketing is odd in r. So both
    /// terms gather with one index, p2c's transposed. Only the rows of the table that some pair reaches are projected
    /// (the frame's window): the projection and the gather are the same for those rows, and shorter.
    /// </remarks>
    Tensor? RelativeScores(Tensor q, Tensor k, RelativePositionSource positions)
    {
        var frame = positions.Current;
        long batch = q.shape[0], queries = q.shape[1], keys = k.shape[1];
        using var index = queries == frame.Index.shape[0] ? frame.Index.alias() : frame.Index.narrow(0, 0, queries);   // [queries, keys]
        using var table = positions.Embeddings(frame);                                  // [window, hidden]
        using var dropped = Dropout.Apply(table, _positionDropout, training);           // HF: pos_dropout, once per layer
        using var relative = dropped.unsqueeze(0);                                       // [1, window, hidden]
        using Scalar scale = 1.0 / Math.Sqrt(_headDim * _settings.ScaleFactor);
        Tensor? c2p = null, p2c = null;
        try
        {
            if (_settings.ContentToPosition)
            {
                var projection = _settings.ShareAttentionKey ? _layers.Key : _layers.PositionKey!;
                using var positionKey = Heads(projection, relative, scale);              // [1, heads, window, d]
                using var queryHeads = Heads(q);                                         // [batch, heads, queries, d]
                using var positionKeyT = positionKey.transpose(-1, -2);
                using var all = queryHeads.matmul(positionKeyT);                         // [batch, heads, queries, window]
                using var at = index.expand(batch, _heads, queries, keys);
                c2p = all.gather(-1, at);
            }
            if (_settings.PositionToContent)
            {
                var projection = _settings.ShareAttentionKey ? _layers.Query : _layers.PositionQuery!;
                using var positionQuery = Heads(projection, relative, scale);            // [1, heads, window, d]
                using var keyHeads = Heads(k);                                           // [batch, heads, keys, d]
                using var positionQueryT = positionQuery.transpose(-1, -2);
                using var all = keyHeads.matmul(positionQueryT);                         // [batch, heads, keys, window]
                using var indexT = index.transpose(0, 1);
                using var at = indexT.expand(batch, _heads, keys, queries);
                using var gathered = all.gather(-1, at);                                 // [batch, heads, keys, queries]
                p2c = gathered.transpose(-1, -2);
            }
            if (c2p is null || p2c is null) return c2p ?? p2c;
            return c2p.add(p2c);
        }
        finally
        {
            if (c2p is not null && p2c is not null)
            {
                c2p.Dispose();
                p2c.Dispose();
            }
        }
    }

    /// <summary>[batch, n, heads·d] as [batch, heads, n, d].</summary>
    Tensor Heads(Tensor x)
    {
        using var split = x.view(x.shape[0], x.shape[1], _heads, _headDim);
        return split.transpose(1, 2);
    }

    /// <summary>The relative embeddings projected by <paramref name="projection"/> and scaled, as [1, heads, window, d].</summary>
    Tensor Heads(LoraLinear projection, Tensor relative, Scalar scale)
    {
        using var projected = projection.forward(relative);
        using var scaled = projected.mul_(scale);
        return Heads(scaled);
    }
}

/// <summary>
/// The layers (under <c>layer</c>, as <see cref="EncoderStack{TLayer}"/> holds them), the relative-position
/// embeddings and their LayerNorm (HF: DebertaV2Encoder). It sets each pass's relative positions for its layers.
/// </summary>
internal sealed class DebertaV2Encoder : nn.Module<Tensor, Tensor?, Tensor>
{
    readonly LayerStack<BertLayer> layer;
    readonly Embedding? rel_embeddings;
    readonly LayerNorm? LayerNorm;
    readonly RelativePositionSource _positions;
    readonly DebertaV2Settings _settings;

    public DebertaV2Encoder(TransformerConfig config, DebertaV2Settings settings) : base("encoder")
    {
        _settings = settings;
        _positions = new RelativePositionSource(RelativeEmbeddings);
        // HF's DebertaV2Layer is BERT's layer (attention = self + output, intermediate, output) with disentangled self-attention.
        layer = new LayerStack<BertLayer>(config.NumLayers,
            () => new BertLayer(config, new BertAttention(config, new DisentangledSelfAttention(config, settings, _positions))));
        register_module("layer", layer);
        if (settings.RelativeAttention)
        {
            rel_embeddings = Embeddings.Normal(2L * settings.AttentionSpan, config.HiddenSize);   // HF: pos_ebd_size * 2 rows
            register_module("rel_embeddings", rel_embeddings);
        }
        // Created whenever norm_rel_ebd asks for it (Hugging Face does so even without relative attention).
        if (settings.NormalizeRelativeEmbeddings)
        {
            LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
            register_module("LayerNorm", LayerNorm);
        }
    }

    /// <summary>The layers, for the base model to run.</summary>
    public ILayerStack Layers => layer;

    public override Tensor forward(Tensor x, Tensor? keyMask) => layer.Run(x, keyMask);

    /// <summary>
    /// Sets the relative positions of a pass over <paramref name="seq"/> tokens (HF: get_rel_pos and
    /// get_rel_embedding, once per forward): the index of every (query, key) pair into the rows of the relative table
    /// that the pairs reach, and those rows normalized. Does nothing without relative scores.
    /// </summary>
    public void BeginPass(long seq, Device device)
    {
        if (!_settings.RelativeScores) return;
        int span = _settings.AttentionSpan;
        using var relative = RelativePositionBuckets.Build(seq, _settings.PositionBuckets, _settings.MaxRelativePositions, device);
        using Scalar spanScalar = span, last = 2 * span - 1;
        using var shifted = relative.add(spanScalar);
        using var clamped = shifted.clamp(Scalars.Zero, last);                    // HF: c2p_pos
        long first = clamped.min().item<long>(), count = clamped.max().item<long>() - first + 1;
        using Scalar firstScalar = first;
        var index = clamped.sub(firstScalar).DetachFromDisposeScope();
        // With activation checkpointing, layers recomputed in the backward pass take their table from outside their
        // checkpoint; were it trainable (full fine-tuning), each recomputation would run the backward pass through
        // the shared norm again. So each layer then computes its own, as it does inside its checkpoint.
        bool tableTrains = rel_embeddings!.weight!.requires_grad
            || (LayerNorm is not null && (LayerNorm.weight!.requires_grad || LayerNorm.bias!.requires_grad));
        bool perLayer = layer.GradientCheckpointing && training && torch.is_grad_enabled() && tableTrains;
        var table = perLayer ? null : RelativeEmbeddings(first, count).DetachFromDisposeScope();
        _positions.Set(new RelativePositionSource.Frame(index, first, count, table));
    }

    /// <summary>HF's get_rel_embedding (rel_embeddings, LayerNorm'd when norm_rel_ebd says so) over rows [first, first + count).</summary>
    Tensor RelativeEmbeddings(long first, long count)
    {
        using var rows = rel_embeddings!.weight!.narrow(0, first, count);
        return LayerNorm?.forward(rows) ?? rows.alias();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _positions.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>Embeddings and encoder (HF: DebertaV2Model, the "deberta." prefix).</summary>
internal sealed class DebertaV2Model : TransformerModel
{
    readonly DebertaV2Embeddings embeddings;
    readonly DebertaV2Encoder encoder;

    public DebertaV2Model(TransformerConfig config, DebertaV2Settings settings) : base("deberta")
    {
        embeddings = new DebertaV2Embeddings(config, settings);
        encoder = new DebertaV2Encoder(config, settings);
        register_module("embeddings", embeddings);
        register_module("encoder", encoder);
    }

    protected override Tensor Embed(ModelInput input) => embeddings.forward(input);

    private protected override ILayerStack Layers => encoder.Layers;

    /// <summary>
    /// The key mask every layer takes, and beside it the pass's relative positions. Hugging Face's get_attention_mask
    /// also hides every key from a padding query; a real token's output is the same either way.
    /// </summary>
    protected override Tensor? LayerMask(ModelInput input)
    {
        encoder.BeginPass(input.InputIds.shape[1], input.InputIds.device);
        return base.LayerMask(input);
    }
}

/// <summary>dropout, dense, pooler_hidden_act over the first token's hidden state (HF: ContextPooler).</summary>
internal sealed class ContextPooler : nn.Module<Tensor, Tensor>
{
    readonly LoraLinear dense;
    readonly string _activation;
    readonly double _dropout;

    public ContextPooler(TransformerConfig config, DebertaV2Settings settings) : base("pooler")
    {
        dense = new LoraLinear(config.HiddenSize, config.HiddenSize);
        register_module("dense", dense);
        _activation = settings.PoolerActivation;
        _dropout = settings.PoolerDropout;
    }

    /// <param name="hidden">[batch, seq or 1, hidden]; the first row is read.</param>
    public override Tensor forward(Tensor hidden)
    {
        using var first = hidden.select(1, 0);
        using var dropped = Dropout.Apply(first, _dropout, training);
        using var projected = dense.forward(dropped);
        return Activations.Apply(_activation, projected);
    }
}

/// <summary>DeBERTa-v2 with the ContextPooler, dropout (cls_dropout) and a linear classifier.</summary>
public sealed class DebertaV2ForSequenceClassification : SequenceClassifier
{
    readonly DebertaV2Model deberta;
    readonly ContextPooler pooler;
    readonly LoraLinear classifier;

    public DebertaV2ForSequenceClassification(TransformerConfig config, int numLabels) : base("DebertaV2ForSequenceClassification", config, numLabels)
    {
        var settings = DebertaV2Settings.Of(config);
        deberta = new DebertaV2Model(config, settings);
        pooler = new ContextPooler(config, settings);
        register_module("deberta", deberta);
        register_module("pooler", pooler);
        classifier = AddLabelLayer("classifier");
    }

    public override Tensor forward(ModelInput input)
    {
        using var first = deberta.FirstTokenState(input);
        using var pooled = pooler.forward(first);
        return Classify(classifier, pooled);
    }
}
