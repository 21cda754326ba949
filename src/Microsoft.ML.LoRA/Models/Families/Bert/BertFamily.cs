using Microsoft.ML.LoRA.Checkpoints;

namespace Microsoft.ML.LoRA.Models;

/// <summary>BERT (<c>model_type</c> "bert"): post-norm encoder, [CLS] pooler + classifier, WordPiece, token types.</summary>
public sealed class BertFamily : ModelFamily
{
    public override string Name => "bert";

    public override IReadOnlyList<string> ModelTypes { get; } = new[] { "bert" };

    /// <summary>The LoRA switches of the BERT encoder layer (RoBERTa's is the same).</summary>
    internal static readonly IReadOnlyDictionary<LoraSwitch, string> EncoderSwitches = new Dictionary<LoraSwitch, string>
    {
        [LoraSwitch.Query] = @".*\.attention\.self\.query",
        [LoraSwitch.Key] = @".*\.attention\.self\.key",
        [LoraSwitch.Value] = @".*\.attention\.self\.value",
        [LoraSwitch.Projection] = @".*\.attention\.output\.dense",
        [LoraSwitch.Mlp] = @".*\.layer\.\d+\.(intermediate|output)\.dense",
    };

    public override FamilyLayout Layout { get; } = new("bert", "bert",
        HeadModules: new[] { "classifier" },
        CreatableModules: new[] { "bert.pooler", "classifier" },
        SwitchPatterns: FamilyLayout.WithHead(EncoderSwitches, "classifier"),
        IgnoredCheckpointPrefixes: new[] { "cls.", "bert.embeddings.position_ids", "embeddings.position_ids" },
        ModulesAfterLayers: new[] { "bert.pooler" });

    protected override TransformerConfig ReadConfig(ConfigJson json) => ReadEncoderConfig(AbsolutePositionsOnly(json), defaultPadTokenId: 0) with
    {
        Tokenizer = TokenizerKind.WordPiece,
        TakesTokenTypes = true,
    };

    /// <summary>
    /// <paramref name="json"/>, once its position_embedding_type (BERT's and RoBERTa's) is checked to be absent or
    /// "absolute": "relative_key" and "relative_key_query" add distance embeddings to the attention scores, which these
    /// models do not build, so such a checkpoint is refused rather than scored without them.
    /// </summary>
    internal static ConfigJson AbsolutePositionsOnly(ConfigJson json)
    {
        if (json.String("position_embedding_type") is { } type && type != "absolute")
            throw new CheckpointFormatException(json.Source,
                $"position_embedding_type '{type}' is not supported: only 'absolute' position embeddings are (relative_key and relative_key_query add distance embeddings this library does not build)");
        return json;
    }

    /// <summary>
    /// The config fields BERT, RoBERTa and DeBERTa-v2 share (hidden_size, num_hidden_layers, ..., hidden_dropout_prob),
    /// with each family's defaults for the fields a config may leave out.
    /// </summary>
    internal static TransformerConfig ReadEncoderConfig(ConfigJson r, int defaultPadTokenId, int defaultTypeVocabSize = 2, double defaultLayerNormEps = 1e-12) => new()
    {
        HiddenSize = r.Int("hidden_size"),
        NumLayers = r.Int("num_hidden_layers"),
        NumHeads = r.Int("num_attention_heads"),
        IntermediateSize = r.Int("intermediate_size"),
        MaxPositions = r.Int("max_position_embeddings"),
        VocabSize = r.Int("vocab_size"),
        TypeVocabSize = r.IntOrNull("type_vocab_size") ?? defaultTypeVocabSize,
        LayerNormEps = r.DoubleOrNull("layer_norm_eps") ?? defaultLayerNormEps,
        Activation = r.String("hidden_act") ?? "gelu",
        PadTokenId = r.IntOrNull("pad_token_id") ?? defaultPadTokenId,
        HiddenDropout = r.DoubleOrNull("hidden_dropout_prob") ?? 0.1,
        AttentionDropout = r.DoubleOrNull("attention_probs_dropout_prob") ?? 0.1,
        EmbeddingDropout = r.DoubleOrNull("hidden_dropout_prob") ?? 0.1,
        ClassifierDropout = r.DoubleOrNull("classifier_dropout") ?? r.DoubleOrNull("hidden_dropout_prob") ?? 0.1,
    };

    protected internal override SequenceClassifier CreateClassifier(TransformerConfig config, int numLabels) =>
        new BertForSequenceClassification(config, numLabels);
}
