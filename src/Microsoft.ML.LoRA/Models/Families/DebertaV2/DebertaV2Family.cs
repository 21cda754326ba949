using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models.Kernels;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// DeBERTa-v2 and DeBERTa-v3 (<c>model_type</c> "deberta-v2"): a post-norm encoder with disentangled attention
/// (content-to-position and position-to-content scores over relative-position embeddings), a ContextPooler over the
/// first token and a classifier, SentencePiece tokenizers brought by the checkpoint.
/// </summary>
public sealed class DebertaV2Family : ModelFamily
{
    public override string Name => "deberta-v2";

    public override IReadOnlyList<string> ModelTypes { get; } = new[] { "deberta-v2" };

    public override FamilyLayout Layout { get; } = new("deberta-v2", "deberta",
        // Hugging Face keeps the pooler and the classifier at the top level (not under "deberta."). The head is the
        // classifier alone, as for BERT, whose pooler also sits outside the head: PEFT's modules_to_save for SEQ_CLS
        // is ["classifier", "score"], so a config alone (lora inspect) trains what PEFT trains. A checkpoint without
        // a pooler (DeBERTa-v3's are masked-LM / RTD checkpoints) gets one created, and a created module trains with
        // the head by default here (WeightLoader, LoraInjector) where PEFT would leave it frozen at random weights.
        HeadModules: new[] { "classifier" },
        CreatableModules: new[] { "pooler", "classifier" },
        SwitchPatterns: new Dictionary<LoraSwitch, string>
        {
            [LoraSwitch.Query] = @".*\.attention\.self\.query_proj",
            [LoraSwitch.Key] = @".*\.attention\.self\.key_proj",
            [LoraSwitch.Value] = @".*\.attention\.self\.value_proj",
            [LoraSwitch.Projection] = @".*\.attention\.output\.dense",
            [LoraSwitch.Mlp] = @".*\.layer\.\d+\.(intermediate|output)\.dense",
            // As BERT's: the classifier. The pooler has no pre-trained weights in the usual checkpoints, so it trains
            // in full rather than through an adapter.
            [LoraSwitch.Head] = "classifier",
        },
        // The pre-training heads of masked-LM and replaced-token-detection checkpoints, the position-id buffer, and
        // (as Hugging Face's _keys_to_ignore_on_load_unexpected) absolute position embeddings a checkpoint may hold
        // though its config does not add them to the input (position_biased_input false).
        IgnoredCheckpointPrefixes: new[] { "lm_predictions.", "mask_predictions.", "cls.", "embeddings.position_ids", "embeddings.position_embeddings" },
        ModulesAfterLayers: new[] { "pooler" });

    protected override TransformerConfig ReadConfig(ConfigJson r)
    {
        // BERT's field names, with DebertaV2Config's defaults where a field is absent.
        var encoder = BertFamily.ReadEncoderConfig(r, defaultPadTokenId: 0, defaultTypeVocabSize: 0, defaultLayerNormEps: 1e-7);
        var config = encoder with
        {
            // DebertaV2ForSequenceClassification: cls_dropout, else hidden_dropout_prob.
            ClassifierDropout = r.DoubleOrNull("cls_dropout") ?? r.DoubleOrNull("hidden_dropout_prob") ?? 0.1,
            Tokenizer = TokenizerKind.FromFiles,
            TakesTokenTypes = encoder.TypeVocabSize > 0,
        };
        DebertaV2Settings.Read(r, config);   // refuses what the modules cannot build, before a model is made
        return config;
    }

    protected internal override SequenceClassifier CreateClassifier(TransformerConfig config, int numLabels) =>
        new DebertaV2ForSequenceClassification(config, numLabels);
}

/// <summary>
/// The DeBERTa-v2 fields of a config.json beyond <see cref="TransformerConfig"/>'s, with the defaults Hugging Face's
/// DebertaV2Config and the modules' <c>getattr</c> calls give them.
/// </summary>
/// <param name="RelativeAttention"><c>relative_attention</c>: relative-position embeddings and scores (default false).</param>
/// <param name="MaxRelativePositions"><c>max_relative_positions</c>, with -1 (or any value below 1) meaning max_position_embeddings.</param>
/// <param name="PositionBuckets"><c>position_buckets</c>: log-bucketed relative positions when positive (default -1: none).</param>
/// <param name="ContentToPosition"><c>pos_att_type</c> holds "c2p".</param>
/// <param name="PositionToContent"><c>pos_att_type</c> holds "p2c".</param>
/// <param name="ShareAttentionKey"><c>share_att_key</c>: positions projected by query_proj / key_proj rather than pos_query_proj / pos_key_proj.</param>
/// <param name="NormalizeRelativeEmbeddings"><c>norm_rel_ebd</c> holds "layer_norm": encoder.LayerNorm over rel_embeddings.</param>
/// <param name="PositionBiasedInput"><c>position_biased_input</c>: absolute position embeddings added to the input (default true).</param>
/// <param name="EmbeddingSize"><c>embedding_size</c> (default hidden_size); embed_proj maps it to hidden_size where it differs.</param>
/// <param name="PoolerActivation"><c>pooler_hidden_act</c> (default gelu).</param>
/// <param name="PoolerDropout"><c>pooler_dropout</c> (default 0).</param>
public sealed record DebertaV2Settings(
    bool RelativeAttention,
    int MaxRelativePositions,
    int PositionBuckets,
    bool ContentToPosition,
    bool PositionToContent,
    bool ShareAttentionKey,
    bool NormalizeRelativeEmbeddings,
    bool PositionBiasedInput,
    int EmbeddingSize,
    string PoolerActivation,
    double PoolerDropout)
{
    /// <summary>
    /// DisentangledSelfAttention's scale_factor: 1 + one per score term in pos_att_type; every term is divided by
    /// √(head_dim · scale_factor). It counts pos_att_type even without relative attention, as Hugging Face does.
    /// </summary>
    public int ScaleFactor => 1 + (ContentToPosition ? 1 : 0) + (PositionToContent ? 1 : 0);

    /// <summary>The attention span att_span (pos_ebd_size): position_buckets when positive, else max_relative_positions.</summary>
    public int AttentionSpan => PositionBuckets > 0 ? PositionBuckets : MaxRelativePositions;

    /// <summary>Whether any relative-position score is computed (relative attention with c2p or p2c).</summary>
    public bool RelativeScores => RelativeAttention && (ContentToPosition || PositionToContent);

    /// <summary>The settings of a config read by <see cref="DebertaV2Family"/>.</summary>
    public static DebertaV2Settings Of(TransformerConfig config) => Read(new ConfigJson(config.Raw, config.Source), config);

    /// <summary>Reads the fields; unsupported values are a <see cref="CheckpointFormatException"/> naming the field and the value.</summary>
    internal static DebertaV2Settings Read(ConfigJson r, TransformerConfig common)
    {
        string source = r.Source;
        CheckpointFormatException Refuse(string problem) => new(source, problem);

        // ConvLayer runs after the first layer on the embedding output; v2-xlarge and -xxlarge have it, v3 has none.
        if (r.IntOrNull("conv_kernel_size") is int kernel && kernel > 0)
            throw Refuse($"conv_kernel_size {kernel} is not supported: DeBERTa-v2's convolution layer (encoder.conv) is not implemented; DeBERTa-v3 checkpoints have none");
        if (r.IntOrNull("attention_head_size") is int headSize && headSize * common.NumHeads != common.HiddenSize)
            throw Refuse($"attention_head_size {headSize} is not supported: heads × head size must equal hidden_size ({common.NumHeads} × {headSize} ≠ {common.HiddenSize})");
        if (r.IntOrNull("pooler_hidden_size") is int poolerSize && poolerSize != common.HiddenSize)
            throw Refuse($"pooler_hidden_size {poolerSize} is not supported: the ContextPooler reads the {common.HiddenSize}-wide hidden state and feeds a classifier of that width");

        bool relative = Bool(r, "relative_attention", false);
        int maxRelative = r.IntOrNull("max_relative_positions") ?? -1;
        if (maxRelative < 1) maxRelative = common.MaxPositions;
        int buckets = r.IntOrNull("position_buckets") ?? -1;
        // make_log_bucket_position divides by log((max_relative_positions - 1) / (position_buckets / 2)).
        if (relative && buckets > 0 && maxRelative - 1 <= buckets / 2)
            throw Refuse($"position_buckets {buckets} is not supported with max_relative_positions {maxRelative}: log buckets need max_relative_positions above {buckets / 2 + 1}");

        var scoreTypes = Terms(r, "pos_att_type", new[] { "c2p", "p2c" });
        var norms = Terms(r, "norm_rel_ebd", new[] { "layer_norm" });

        int embeddingSize = r.IntOrNull("embedding_size") ?? common.HiddenSize;
        if (embeddingSize <= 0) throw Refuse($"embedding_size {embeddingSize} is not supported: it must be positive");

        string poolerActivation = r.String("pooler_hidden_act") ?? "gelu";
        if (!Activations.Supported.Contains(poolerActivation))
            throw Refuse($"pooler_hidden_act '{poolerActivation}' is not supported ({string.Join(", ", Activations.Supported)})");

        return new DebertaV2Settings(
            RelativeAttention: relative,
            MaxRelativePositions: maxRelative,
            PositionBuckets: buckets,
            ContentToPosition: scoreTypes.Contains("c2p"),
            PositionToContent: scoreTypes.Contains("p2c"),
            ShareAttentionKey: Bool(r, "share_att_key", false),
            NormalizeRelativeEmbeddings: norms.Contains("layer_norm"),
            PositionBiasedInput: Bool(r, "position_biased_input", true),
            EmbeddingSize: embeddingSize,
            PoolerActivation: poolerActivation,
            PoolerDropout: r.DoubleOrNull("pooler_dropout") ?? 0.0);
    }

    /// <summary>A boolean field, or <paramref name="fallback"/> when absent.</summary>
    static bool Bool(ConfigJson r, string key, bool fallback) => r.Raw[key] switch
    {
        null => fallback,
        JsonValue v when v.GetValueKind() == JsonValueKind.True => true,
        JsonValue v when v.GetValueKind() == JsonValueKind.False => false,
        var other => throw new CheckpointFormatException(r.Source, $"field '{key}' is not true or false ({other.ToJsonString()})"),
    };

    /// <summary>
    /// A list of names given as a JSON list or as one "a|b" string (DebertaV2Config's backward-compatible form), in
    /// lower case; "none" and empty entries mean nothing. Any name outside <paramref name="known"/> is refused.
    /// </summary>
    static IReadOnlyList<string> Terms(ConfigJson r, string key, IReadOnlyList<string> known)
    {
        IEnumerable<string> raw = r.Raw[key] switch
        {
            null => Array.Empty<string>(),
            JsonValue v when v.TryGetValue<string>(out var s) => s.Split('|'),
            JsonArray list => list.Select(e => e is JsonValue ev && ev.TryGetValue<string>(out var s) ? s
                : throw new CheckpointFormatException(r.Source, $"field '{key}' is not a list of names ({list.ToJsonString()})")),
            var other => throw new CheckpointFormatException(r.Source, $"field '{key}' is not a list of names ({other.ToJsonString()})"),
        };
        var terms = raw.Select(t => t.Trim().ToLowerInvariant()).Where(t => t.Length > 0 && t != "none").ToList();
        foreach (var t in terms)
            if (!known.Contains(t))
                throw new CheckpointFormatException(r.Source, $"{key} '{t}' is not supported (DeBERTa-v2 reads {string.Join(", ", known)})");
        return terms;
    }
}
