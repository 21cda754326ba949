using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models;

namespace Microsoft.ML.LoRA.Export;

/// <summary>
/// Each exportable family's forward pass written as an ONNX graph over its merged weights, module for module as the
/// family's file in Models/Families computes it (dropout left out: the graph scores). Inputs <c>input_ids</c>,
/// <c>attention_mask</c> (int64 [batch, sequence]) and, for families that read them, <c>token_type_ids</c>; output
/// <c>logits</c> [batch, labels].
/// </summary>
internal static class OnnxFamilyGraphs
{
    public const string InputIds = "input_ids", AttentionMask = "attention_mask", TokenTypeIds = "token_type_ids", Logits = "logits";

    /// <summary>
    /// Writes a family's forward pass into the graph from its inputs (<paramref name="types"/> null for a family that
    /// reads no token types) and returns the name of its logits.
    /// </summary>
    delegate string GraphWriter(OnnxLayers layers, TransformerConfig config, string ids, string mask, string? types);

    /// <summary>
    /// The writer of each exportable family, keyed by its descriptor in <see cref="ModelFamilies"/>. The family folders
    /// sit below this layer and cannot name it, so a family becomes exportable here: its writer below and one line.
    /// </summary>
    static readonly IReadOnlyDictionary<ModelFamily, GraphWriter> Writers = new Dictionary<ModelFamily, GraphWriter>
    {
        [ModelFamilies.Get<BertFamily>()] = Bert,
        [ModelFamilies.Get<DistilBertFamily>()] = (l, config, ids, mask, _) => DistilBert(l, config, ids, mask),
        [ModelFamilies.Get<RobertaFamily>()] = Roberta,
        [ModelFamilies.Get<Gpt2Family>()] = (l, config, ids, mask, _) => Gpt2(l, config, ids, mask),
        [ModelFamilies.Get<DebertaV2Family>()] = Deberta,
        [ModelFamilies.Get<LlamaFamily>()] = (l, config, ids, mask, _) => Llama(l, config, ids, mask),
    };

    /// <summary>The families the exporter writes, in registry order, with their model types where they read more than their name.</summary>
    public static readonly IReadOnlyList<string> Supported = ModelFamilies.All.Where(Writers.ContainsKey)
        .Select(f => f.ModelTypes.SequenceEqual(new[] { f.Name }) ? f.Name : $"{f.Name} ({string.Join(", ", f.ModelTypes)})").ToArray();

    /// <summary>Whether a family is exportable, and if not, why.</summary>
    public static string? Refusal(TransformerConfig config) =>
        ModelFamilies.Find(config.Family) is { } family && Writers.ContainsKey(family) ? null : $"the {config.Family} family cannot be exported to ONNX";

    /// <summary>The graph's input names, in order.</summary>
    public static IReadOnlyList<string> Inputs(TransformerConfig config) =>
        config.TakesTokenTypes ? new[] { InputIds, AttentionMask, TokenTypeIds } : new[] { InputIds, AttentionMask };

    /// <summary>Writes <paramref name="config"/>'s family into <paramref name="layers"/>' graph.</summary>
    public static void Build(OnnxLayers layers, TransformerConfig config, int labels)
    {
        if (Refusal(config) is { } why) throw new NotSupportedException(why);
        var g = layers.Graph;
        var ids = g.Input(InputIds, OnnxType.Int64, "batch", "sequence");
        var mask = g.Input(AttentionMask, OnnxType.Int64, "batch", "sequence");
        var types = config.TakesTokenTypes ? g.Input(TokenTypeIds, OnnxType.Int64, "batch", "sequence") : null;
        string logits = Writers[ModelFamilies.Of(config)](layers, config, ids, mask, types);
        g.Output(logits, Logits, OnnxType.Float, "batch", (long)labels);
        var unused = layers.Unused.ToList();
        if (unused.Count > 0)
            throw new NotSupportedException($"the {config.Family} graph does not use every weight of the model: {string.Join(", ", unused.Take(8))}{(unused.Count > 8 ? ", ..." : "")}");
    }

    // BertEmbeddings: word + position (+ token type) embeddings, then LayerNorm. RoBERTa counts positions after the
    // padding index over non-padding tokens; a model with a token-type table that takes no token types adds row 0.
    static string Embeddings(OnnxLayers l, TransformerConfig config, string prefix, string ids, string? types, long? paddingIdxForPositions)
    {
        var g = l.Graph;
        var words = l.Embed($"{prefix}.word_embeddings.weight", ids);
        string positions;
        if (paddingIdxForPositions is long pad)
        {
            var padId = g.Int64Scalar(pad);
            var notPad = g.Node("Cast", new[] { g.Node("Not", new[] { g.Node("Equal", new[] { ids, padId }) }) }, OnnxAttribute.Int("to", (long)OnnxType.Int64));
            var counted = g.Node("CumSum", new[] { notPad, g.Int64Scalar(1) });
            positions = g.Node("Add", new[] { g.Node("Mul", new[] { counted, notPad }), padId });
        }
        else
        {
            positions = l.Positions(ids);
        }
        var x = g.Node("Add", new[] { words, l.Embed($"{prefix}.position_embeddings.weight", positions) });
        var tokenTypes = $"{prefix}.token_type_embeddings.weight";
        if (l.Has(tokenTypes))
        {
            if (types is not null)
            {
                x = g.Node("Add", new[] { x, l.Embed(tokenTypes, types) });
            }
            else
            {
                var table = l.Read(tokenTypes);
                x = g.Node("Add", new[] { x, l.Weight(tokenTypes + ".row0", table.Data.AsSpan(0, (int)table.Columns).ToArray(), table.Columns) });
            }
        }
        return l.LayerNorm(x, $"{prefix}.LayerNorm", config.LayerNormEps);
    }

    // BertLayer: self-attention, output dense + residual + LayerNorm, intermediate + activation, output dense + residual + LayerNorm.
    // The last layer runs for the first token's row only (its keys and values from every row), as the library's head
    // readout does: the head reads nothing else. Returns [batch, 1, hidden].
    static string BertEncoder(OnnxLayers l, TransformerConfig config, string prefix, string x, string bias)
    {
        var g = l.Graph;
        for (int i = 0; i < config.NumLayers; i++)
        {
            var p = $"{prefix}.encoder.layer.{i}";
            var rows = i == config.NumLayers - 1 ? l.FirstRow(x) : x;
            var q = l.Linear(rows, $"{p}.attention.self.query");
            var k = l.Linear(x, $"{p}.attention.self.key");
            var v = l.Linear(x, $"{p}.attention.self.value");
            var context = l.Attention(q, k, v, config.NumHeads, config.HeadDim, bias);
            var attended = l.LayerNorm(g.Node("Add", new[] { l.Linear(context, $"{p}.attention.output.dense"), rows }), $"{p}.attention.output.LayerNorm", config.LayerNormEps);
            var up = l.Activation(l.Linear(attended, $"{p}.intermediate.dense"), config.Activation);
            x = l.LayerNorm(g.Node("Add", new[] { l.Linear(up, $"{p}.output.dense"), attended }), $"{p}.output.LayerNorm", config.LayerNormEps);
        }
        return x;
    }

    static string Bert(OnnxLayers l, TransformerConfig config, string ids, string mask, string? types)
    {
        var x = Embeddings(l, config, "bert.embeddings", ids, types, null);
        var hidden = BertEncoder(l, config, "bert", x, l.KeyMaskBias(mask));
        var pooled = l.Graph.Node("Tanh", new[] { l.Linear(l.SingleRow(hidden), "bert.pooler.dense") });
        return l.Linear(pooled, "classifier");
    }

    static string Roberta(OnnxLayers l, TransformerConfig config, string ids, string mask, string? types)
    {
        var x = Embeddings(l, config, "roberta.embeddings", ids, types, config.PadTokenId ?? 1);
        var hidden = BertEncoder(l, config, "roberta", x, l.KeyMaskBias(mask));
        var dense = l.Graph.Node("Tanh", new[] { l.Linear(l.SingleRow(hidden), "classifier.dense") });
        return l.Linear(dense, "classifier.out_proj");
    }

    // DistilBertLayer: attention (q_lin, k_lin, v_lin, out_lin) + residual, sa_layer_norm; ffn (lin1, activation, lin2) + residual, output_layer_norm.
    static string DistilBert(OnnxLayers l, TransformerConfig config, string ids, string mask)
    {
        var g = l.Graph;
        var x = Embeddings(l, config, "distilbert.embeddings", ids, null, null);
        var bias = l.KeyMaskBias(mask);
        const double layerNormEps = 1e-12;   // DistilBERT's layers fix it (DistilBertLayer)
        for (int i = 0; i < config.NumLayers; i++)
        {
            var p = $"distilbert.transformer.layer.{i}";
            var rows = i == config.NumLayers - 1 ? l.FirstRow(x) : x;   // the last layer for the head's row only (BertEncoder)
            var context = l.Attention(l.Linear(rows, $"{p}.attention.q_lin"), l.Linear(x, $"{p}.attention.k_lin"), l.Linear(x, $"{p}.attention.v_lin"),
                config.NumHeads, config.HeadDim, bias);
            var attended = l.LayerNorm(g.Node("Add", new[] { l.Linear(context, $"{p}.attention.out_lin"), rows }), $"{p}.sa_layer_norm", layerNormEps);
            var up = l.Activation(l.Linear(attended, $"{p}.ffn.lin1"), config.Activation);
            x = l.LayerNorm(g.Node("Add", new[] { l.Linear(up, $"{p}.ffn.lin2"), attended }), $"{p}.output_layer_norm", layerNormEps);
        }
        var first = g.Node("Relu", new[] { l.Linear(l.SingleRow(x), "pre_classifier") });
        return l.Linear(first, "classifier");
    }

    // Gpt2Block: pre-norm causal attention (fused c_attn, c_proj; Conv1D weights [in, out]) and MLP (c_fc, c_proj), then ln_f,
    // read at the last real token, and the bias-free score. The last block runs for that row only (keys and values from
    // every row), as the library's head readout does.
    static string Gpt2(OnnxLayers l, TransformerConfig config, string ids, string mask)
    {
        var g = l.Graph;
        var positions = l.Positions(ids);
        var x = g.Node("Add", new[] { l.Embed("transformer.wte.weight", ids), l.Embed("transformer.wpe.weight", positions) });
        var bias = l.CausalMaskBias(mask, positions);
        var last = l.LastRealIndex(mask, positions);
        long hidden = config.HiddenSize;
        var thirds = g.Int64s(hidden, hidden, hidden);
        for (int i = 0; i < config.NumLayers; i++)
        {
            var p = $"transformer.h.{i}";
            bool lastBlock = i == config.NumLayers - 1;
            var rows = lastBlock ? l.RowsAt(x, last, hidden) : x;
            var n1 = l.LayerNorm(x, $"{p}.ln_1", config.LayerNormEps);
            var qkv = g.Nodes("Split", new[] { l.Linear(n1, $"{p}.attn.c_attn", fanInFanOut: true), thirds }, 3, OnnxAttribute.Int("axis", 2));
            var q = qkv[0];
            if (lastBlock)
            {
                var n1Rows = l.LayerNorm(rows, $"{p}.ln_1", config.LayerNormEps);
                q = g.Nodes("Split", new[] { l.Linear(n1Rows, $"{p}.attn.c_attn", fanInFanOut: true), thirds }, 3, OnnxAttribute.Int("axis", 2))[0];
            }
            double queryFactor = Gpt2AttentionScale.QueryFactor(config, i);
            if (queryFactor != 1.0) q = g.Node("Mul", new[] { q, g.FloatScalar((float)queryFactor) });
            var context = l.Attention(q, qkv[1], qkv[2], config.NumHeads, config.HeadDim, lastBlock ? l.CausalRowMaskBias(mask, positions, last) : bias);
            x = g.Node("Add", new[] { l.Linear(context, $"{p}.attn.c_proj", fanInFanOut: true), rows });
            var n2 = l.LayerNorm(x, $"{p}.ln_2", config.LayerNormEps);
            var up = l.Activation(l.Linear(n2, $"{p}.mlp.c_fc", fanInFanOut: true), config.Activation);
            x = g.Node("Add", new[] { l.Linear(up, $"{p}.mlp.c_proj", fanInFanOut: true), x });
        }
        return l.Linear(l.LayerNorm(l.SingleRow(x), "transformer.ln_f", config.LayerNormEps), "score");
    }

    // LlamaDecoderLayer (llama, mistral, qwen2): RMSNorm, attention with rotary positions on queries and keys, grouped
    // key/value heads and Mistral's sliding windows, then RMSNorm and the SwiGLU MLP (down(silu(gate) · up)); the final
    // norm and the bias-free score at the last real token. Positions are 0 .. seq-1 whatever the padding, as the
    // library and Hugging Face number them. The last layer runs for the last real token's row only (its query rotated
    // at that row's position), as the library's head readout does.
    static string Llama(OnnxLayers l, TransformerConfig config, string ids, string mask)
    {
        var g = l.Graph;
        var settings = LlamaSettings.Of(config);
        int heads = config.NumHeads, headDim = settings.HeadDim, kvHeads = settings.KeyValueHeads;
        var inverse = settings.Rope.InverseFrequencies(headDim);
        var positions = l.Positions(ids);
        var x = l.Embed("model.embed_tokens.weight", ids);
        var bias = l.CausalMaskBias(mask, positions);
        var last = l.LastRealIndex(mask, positions);
        var tables = l.RotaryTables(positions, inverse);
        for (int i = 0; i < config.NumLayers; i++)
        {
            var p = $"model.layers.{i}";
            bool lastLayer = i == config.NumLayers - 1;
            var rows = lastLayer ? l.RowsAt(x, last, config.HiddenSize) : x;
            var normed = l.RmsNorm(x, $"{p}.input_layernorm", config.LayerNormEps);
            var normedRows = lastLayer ? l.RmsNorm(rows, $"{p}.input_layernorm", config.LayerNormEps) : normed;
            var q = l.Rotate(l.Linear(normedRows, $"{p}.self_attn.q_proj"), heads, headDim, lastLayer ? l.RowRotaryTables(last, inverse) : tables);
            var k = l.Rotate(l.Linear(normed, $"{p}.self_attn.k_proj"), kvHeads, headDim, tables);
            var v = l.Linear(normed, $"{p}.self_attn.v_proj");
            var layerBias = lastLayer ? l.CausalRowMaskBias(mask, positions, last) : bias;
            if (settings.SlidingWindows[i] is int window)
                layerBias = lastLayer ? l.WindowedRowBias(layerBias, positions, last, window) : l.WindowedBias(layerBias, positions, window);
            var context = l.Attention(q, l.RepeatHeads(k, kvHeads, heads / kvHeads, headDim), l.RepeatHeads(v, kvHeads, heads / kvHeads, headDim),
                heads, headDim, layerBias);
            x = g.Node("Add", new[] { l.Linear(context, $"{p}.self_attn.o_proj"), rows });
            var n2 = l.RmsNorm(x, $"{p}.post_attention_layernorm", config.LayerNormEps);
            var gate = l.Activation(l.Linear(n2, $"{p}.mlp.gate_proj"), "silu");
            var up = l.Linear(n2, $"{p}.mlp.up_proj");
            x = g.Node("Add", new[] { l.Linear(g.Node("Mul", new[] { gate, up }), $"{p}.mlp.down_proj"), x });
        }
        return l.Linear(l.RmsNorm(l.SingleRow(x), "model.norm", config.LayerNormEps), "score");
    }

    // DeBERTa-v2/v3 (DebertaV2.cs): embeddings (word, optional absolute positions and token types, optional embed_proj),
    // LayerNorm, zeroed at padding; BERT layers whose self-attention adds disentangled relative-position scores
    // (content-to-position and position-to-content over the log-bucketed relative positions and the normalized
    // rel_embeddings table); the ContextPooler over the first token and the classifier. The last layer runs for the
    // first token's row only (its relative scores from the first row of the index).
    static string Deberta(OnnxLayers l, TransformerConfig config, string ids, string mask, string? types)
    {
        var g = l.Graph;
        var settings = DebertaV2Settings.Of(config);
        var x = l.Embed("deberta.embeddings.word_embeddings.weight", ids);
        if (settings.PositionBiasedInput) x = g.Node("Add", new[] { x, l.Embed("deberta.embeddings.position_embeddings.weight", l.Positions(ids)) });
        const string tokenTypes = "deberta.embeddings.token_type_embeddings.weight";
        if (l.Has(tokenTypes))
        {
            var table = l.Read(tokenTypes);
            x = g.Node("Add", new[] { x, types is not null ? l.Embed(tokenTypes, types)
                : l.Weight(tokenTypes + ".row0", table.Data.AsSpan(0, (int)table.Columns).ToArray(), table.Columns) });
        }
        if (l.Has("deberta.embeddings.embed_proj.weight")) x = l.Linear(x, "deberta.embeddings.embed_proj");
        x = l.LayerNorm(x, "deberta.embeddings.LayerNorm", config.LayerNormEps);
        var realRows = g.Node("Unsqueeze", new[] { g.Node("Cast", new[] { mask }, OnnxAttribute.Int("to", (long)OnnxType.Float)), g.Int64s(-1) });
        x = g.Node("Mul", new[] { x, realRows });
        var keyBias = l.KeyMaskBias(mask);

        string? relativeTable = null, index = null;
        if (settings.RelativeAttention)
        {
            // The rows of rel_embeddings (normalized) the buckets can reach; unused, though present, without c2p or p2c.
            relativeTable = l.Tensor("deberta.encoder.rel_embeddings.weight");
            if (settings.NormalizeRelativeEmbeddings) relativeTable = l.LayerNorm(relativeTable, "deberta.encoder.LayerNorm", config.LayerNormEps);
            if (settings.RelativeScores) index = RelativeIndex(l, config, settings, ids);
        }
        int heads = config.NumHeads, headDim = config.HeadDim;
        for (int i = 0; i < config.NumLayers; i++)
        {
            var p = $"deberta.encoder.layer.{i}";
            bool lastLayer = i == config.NumLayers - 1;   // for the first token's row only, as the library's head readout
            var rows = lastLayer ? l.FirstRow(x) : x;
            var rowIndex = index is not null && lastLayer ? g.Node("Slice", new[] { index, g.Int64s(0), g.Int64s(1), g.Int64s(0) }) : index;
            var q = l.Linear(rows, $"{p}.attention.self.query_proj");
            var k = l.Linear(x, $"{p}.attention.self.key_proj");
            var v = l.Linear(x, $"{p}.attention.self.value_proj");
            var bias = rowIndex is null ? keyBias
                : g.Node("Add", new[] { RelativeScores(l, settings, $"{p}.attention.self", q, k, relativeTable!, rowIndex, heads, headDim), keyBias });
            var scaled = settings.ScaleFactor == 1 ? q : g.Node("Mul", new[] { q, g.FloatScalar((float)(1.0 / Math.Sqrt(settings.ScaleFactor))) });
            var context = l.Attention(scaled, k, v, heads, headDim, bias);
            var attended = l.LayerNorm(g.Node("Add", new[] { l.Linear(context, $"{p}.attention.output.dense"), rows }), $"{p}.attention.output.LayerNorm", config.LayerNormEps);
            var up = l.Activation(l.Linear(attended, $"{p}.intermediate.dense"), config.Activation);
            x = l.LayerNorm(g.Node("Add", new[] { l.Linear(up, $"{p}.output.dense"), attended }), $"{p}.output.LayerNorm", config.LayerNormEps);
        }
        var pooled = l.Activation(l.Linear(l.SingleRow(x), "pooler.dense"), settings.PoolerActivation);
        return l.Linear(pooled, "classifier");
    }

    /// <summary>
    /// The rel_embeddings row of each (query, key) pair, int64 [seq, seq]: the relative position i - j, log-bucketed
    /// (through a table the library's own bucketing fills, so the graph's buckets are libtorch's to the bit), shifted by
    /// the attention span and clamped to the table.
    /// </summary>
    static string RelativeIndex(OnnxLayers l, TransformerConfig config, DebertaV2Settings settings, string ids)
    {
        var g = l.Graph;
        long reach = config.MaxPositions;   // |i - j| < the most tokens a model takes
        long[] buckets;
        using (var relative = global::TorchSharp.torch.arange(-reach, reach + 1, dtype: global::TorchSharp.torch.ScalarType.Int64))
        using (var bucketed = settings.PositionBuckets > 0 && settings.MaxRelativePositions > 0
                   ? RelativePositionBuckets.LogBuckets(relative, settings.PositionBuckets, settings.MaxRelativePositions) : relative.alias())
            buckets = bucketed.data<long>().ToArray();
        var positions = l.Positions(ids);
        var distance = g.Node("Sub", new[] { g.Node("Unsqueeze", new[] { positions, g.Int64s(1) }), g.Node("Unsqueeze", new[] { positions, g.Int64s(0) }) });
        var bucket = g.Node("Gather", new[] { g.Initializer("relative_position_buckets", OnnxType.Int64,
            System.Runtime.InteropServices.MemoryMarshal.AsBytes(buckets.AsSpan()).ToArray(), buckets.Length), g.Node("Add", new[] { distance, g.Int64Scalar(reach) }) });
        int span = settings.AttentionSpan;
        return g.Node("Clip", new[] { g.Node("Add", new[] { bucket, g.Int64Scalar(span) }), g.Int64Scalar(0), g.Int64Scalar(2L * span - 1) });
    }

    /// <summary>
    /// Content-to-position plus position-to-content scores [batch, heads, queries, keys] of one layer
    /// (DisentangledSelfAttention.RelativeScores); <paramref name="index"/> is [queries, keys] (its first row alone
    /// for the first token's row).
    /// </summary>
    static string RelativeScores(OnnxLayers l, DebertaV2Settings settings, string prefix, string q, string k, string table, string index, int heads, int headDim)
    {
        var g = l.Graph;
        var scale = g.FloatScalar((float)(1.0 / Math.Sqrt(headDim * settings.ScaleFactor)));
        string PositionHeads(string projection)   // [heads, d, window]
        {
            var projected = g.Node("Mul", new[] { l.Linear(table, projection), scale });
            return g.Node("Transpose", new[] { g.Node("Reshape", new[] { projected, g.Int64s(0, heads, headDim) }) }, OnnxAttribute.Ints("perm", 1, 2, 0));
        }
        string Heads(string x) => g.Node("Transpose", new[] { g.Node("Reshape", new[] { x, g.Int64s(0, 0, heads, headDim) }) }, OnnxAttribute.Ints("perm", 0, 2, 1, 3));
        string Gathered(string all, string at)   // all [b, h, n, window], at [n, m]: all[b, h, i, at[i, j]]
        {
            var shape = g.Node("Concat", new[] { g.Node("Slice", new[] { g.Node("Shape", new[] { all }), g.Int64s(0), g.Int64s(3) }),
                g.Node("Slice", new[] { g.Node("Shape", new[] { at }), g.Int64s(1), g.Int64s(2) }) }, OnnxAttribute.Int("axis", 0));
            return g.Node("GatherElements", new[] { all, g.Node("Expand", new[] { at, shape }) }, OnnxAttribute.Int("axis", -1));
        }
        string? c2p = null, p2c = null;
        if (settings.ContentToPosition)
        {
            var positionKey = PositionHeads(settings.ShareAttentionKey ? $"{prefix}.key_proj" : $"{prefix}.pos_key_proj");
            c2p = Gathered(g.Node("MatMul", new[] { Heads(q), positionKey }), index);
        }
        if (settings.PositionToContent)
        {
            var positionQuery = PositionHeads(settings.ShareAttentionKey ? $"{prefix}.query_proj" : $"{prefix}.pos_query_proj");
            var indexT = g.Node("Transpose", new[] { index }, OnnxAttribute.Ints("perm", 1, 0));
            var gathered = Gathered(g.Node("MatMul", new[] { Heads(k), positionQuery }), indexT);   // [b, h, keys, queries]
            p2c = g.Node("Transpose", new[] { gathered }, OnnxAttribute.Ints("perm", 0, 1, 3, 2));
        }
        return c2p is not null && p2c is not null ? g.Node("Add", new[] { c2p, p2c }) : (c2p ?? p2c)!;
    }
}
