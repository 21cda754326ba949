using Microsoft.ML.LoRA.Checkpoints;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// GPT-2 (<c>model_type</c> "gpt2"): pre-norm causal decoder with Conv1D weights stored [in, out], scored at the last
/// real token by a bias-free <c>score</c> layer, byte-level BPE without special tokens.
/// </summary>
public sealed class Gpt2Family : ModelFamily
{
    public override string Name => "gpt2";

    public override IReadOnlyList<string> ModelTypes { get; } = new[] { "gpt2" };

    public override FamilyLayout Layout { get; } = new("gpt2", "transformer",
        HeadModules: new[] { "score" },
        CreatableModules: new[] { "score" },
        SwitchPatterns: new Dictionary<LoraSwitch, string>
        {
            // GPT-2 computes query, key and value with one fused layer; any of the three switches adapts it.
            [LoraSwitch.Query] = @".*\.attn\.c_attn",
            [LoraSwitch.Key] = @".*\.attn\.c_attn",
            [LoraSwitch.Value] = @".*\.attn\.c_attn",
            [LoraSwitch.Projection] = @".*\.attn\.c_proj",
            [LoraSwitch.Mlp] = @".*\.mlp\.c_(fc|proj)",
            [LoraSwitch.Head] = "score",
        },
        IgnoredCheckpointPrefixes: new[] { "lm_head.", ".attn.bias", ".attn.masked_bias" },
        ModulesAfterLayers: new[] { "transformer.ln_f" });

    protected override TransformerConfig ReadConfig(ConfigJson r) => new()
    {
        HiddenSize = r.Int("n_embd"),
        NumLayers = r.Int("n_layer"),
        NumHeads = r.Int("n_head"),
        IntermediateSize = r.IntOrNull("n_inner") ?? 4 * r.Int("n_embd"),
        MaxPositions = r.Int("n_positions"),
        MaxPositionsField = "n_positions",
        VocabSize = r.Int("vocab_size"),
        TypeVocabSize = 0,
        LayerNormEps = r.DoubleOrNull("layer_norm_epsilon") ?? 1e-5,
        Activation = r.String("activation_function") ?? "gelu_new",
        PadTokenId = r.IntOrNull("pad_token_id"),
        HiddenDropout = r.DoubleOrNull("resid_pdrop") ?? 0.1,
        AttentionDropout = r.DoubleOrNull("attn_pdrop") ?? 0.1,
        EmbeddingDropout = r.DoubleOrNull("embd_pdrop") ?? 0.1,
        ClassifierDropout = 0.0,
        Tokenizer = TokenizerKind.Gpt2ByteLevelBpe,
        FanInFanOut = true,
    };

    protected internal override SequenceClassifier CreateClassifier(TransformerConfig config, int numLabels) =>
        new Gpt2ForSequenceClassification(config, numLabels);
}
