using Microsoft.ML.LoRA.Checkpoints;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// DistilBERT (<c>model_type</c> "distilbert"): a 6-layer BERT without token types or pooler, pre_classifier +
/// classifier over the first token, WordPiece.
/// </summary>
public sealed class DistilBertFamily : ModelFamily
{
    public override string Name => "distilbert";

    public override IReadOnlyList<string> ModelTypes { get; } = new[] { "distilbert" };

    public override FamilyLayout Layout { get; } = new("distilbert", "distilbert",
        HeadModules: new[] { "pre_classifier", "classifier" },
        CreatableModules: new[] { "pre_classifier", "classifier" },
        SwitchPatterns: new Dictionary<LoraSwitch, string>
        {
            [LoraSwitch.Query] = @".*\.attention\.q_lin",
            [LoraSwitch.Key] = @".*\.attention\.k_lin",
            [LoraSwitch.Value] = @".*\.attention\.v_lin",
            [LoraSwitch.Projection] = @".*\.attention\.out_lin",
            [LoraSwitch.Mlp] = @".*\.ffn\.lin[12]",
            [LoraSwitch.Head] = "pre_classifier|classifier",
        },
        IgnoredCheckpointPrefixes: new[] { "vocab_transform.", "vocab_layer_norm.", "vocab_projector.", "distilbert.embeddings.position_ids" },
        ModulesAfterLayers: Array.Empty<string>());

    protected override TransformerConfig ReadConfig(ConfigJson r) => new()
    {
        HiddenSize = r.Int("dim"),
        NumLayers = r.Int("n_layers"),
        NumHeads = r.Int("n_heads"),
        IntermediateSize = r.Int("hidden_dim"),
        MaxPositions = r.Int("max_position_embeddings"),
        VocabSize = r.Int("vocab_size"),
        TypeVocabSize = 0,
        LayerNormEps = 1e-12,
        Activation = r.String("activation") ?? "gelu",
        PadTokenId = r.IntOrNull("pad_token_id") ?? 0,
        HiddenDropout = r.DoubleOrNull("dropout") ?? 0.1,
        AttentionDropout = r.DoubleOrNull("attention_dropout") ?? 0.1,
        EmbeddingDropout = r.DoubleOrNull("dropout") ?? 0.1,
        ClassifierDropout = r.DoubleOrNull("seq_classif_dropout") ?? 0.2,
        Tokenizer = TokenizerKind.WordPiece,
    };

    protected internal override SequenceClassifier CreateClassifier(TransformerConfig config, int numLabels) =>
        new DistilBertForSequenceClassification(config, numLabels);
}
