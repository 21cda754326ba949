using Microsoft.ML.LoRA.Checkpoints;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// The LLaMA family (<c>model_type</c> "llama", "mistral", "qwen2"): pre-norm causal decoders with RMSNorm, rotary
/// positions, grouped-query attention and a SwiGLU feed-forward, scored at the last real token by a bias-free
/// <c>score</c> layer; their tokenizers come with the checkpoint (tokenizer.json or a SentencePiece model).
/// </summary>
public sealed class LlamaFamily : ModelFamily
{
    public override string Name => "llama";

    public override IReadOnlyList<string> ModelTypes { get; } = new[] { "llama", "mistral", "qwen2" };

    public override FamilyLayout Layout { get; } = new("llama", "model",
        HeadModules: new[] { "score" },
        CreatableModules: new[] { "score" },
        SwitchPatterns: new Dictionary<LoraSwitch, string>
        {
            [LoraSwitch.Query] = @".*\.self_attn\.q_proj",
            [LoraSwitch.Key] = @".*\.self_attn\.k_proj",
            [LoraSwitch.Value] = @".*\.self_attn\.v_proj",
            [LoraSwitch.Projection] = @".*\.self_attn\.o_proj",
            [LoraSwitch.Mlp] = @".*\.mlp\.(gate|up|down)_proj",
            [LoraSwitch.Head] = "score",
        },
        // The causal LM's output layer (whether or not tied to embed_tokens) is not part of a classifier, and older
        // checkpoints saved the rotary embedding's inv_freq buffer, which is recomputed from the config here.
        IgnoredCheckpointPrefixes: new[] { "lm_head.", "rotary_emb.inv_freq" },
        ModulesAfterLayers: new[] { "model.norm" });

    /// <summary>Hugging Face's defaults for the fields a config may leave out, per model type (LlamaConfig, MistralConfig, Qwen2Config).</summary>
    static int DefaultMaxPositions(string modelType) => modelType switch
    {
        "mistral" => 4096 * 32,
        "qwen2" => 32768,
        _ => 2048,
    };

    protected override TransformerConfig ReadConfig(ConfigJson r)
    {
        string modelType = r.String("model_type") ?? "llama";
        string activation = r.String("hidden_act") ?? "silu";
        if (activation != "silu")
            throw new CheckpointFormatException(r.Source,
                $"hidden_act '{activation}' is not supported for model_type '{modelType}': its MLP is down_proj(act(gate_proj(x)) * up_proj(x)) with act = silu (SwiGLU)");
        var config = new TransformerConfig
        {
            HiddenSize = r.Int("hidden_size"),
            NumLayers = r.Int("num_hidden_layers"),
            NumHeads = r.Int("num_attention_heads"),
            IntermediateSize = r.Int("intermediate_size"),
            MaxPositions = r.IntOrNull("max_position_embeddings") ?? DefaultMaxPositions(modelType),
            VocabSize = r.Int("vocab_size"),
            TypeVocabSize = 0,
            LayerNormEps = r.DoubleOrNull("rms_norm_eps") ?? 1e-6,
            Activation = activation,
            PadTokenId = r.IntOrNull("pad_token_id"),
            // No dropout but attention dropout in these models (attention_dropout, default 0).
            HiddenDropout = 0.0,
            AttentionDropout = r.DoubleOrNull("attention_dropout") ?? 0.0,
            EmbeddingDropout = 0.0,
            ClassifierDropout = 0.0,
            Tokenizer = TokenizerKind.FromFiles,
            FanInFanOut = false,
        };
        // The family's own fields are checked now, so a config the model cannot be built from fails when it is read.
        if (config.NumHeads > 0 && config.HiddenSize % config.NumHeads == 0 && config.NumLayers > 0)
            LlamaSettings.Read(r, modelType, config.HiddenSize, config.NumHeads, config.NumLayers);
        return config;
    }

    protected internal override SequenceClassifier CreateClassifier(TransformerConfig config, int numLabels) =>
        new LlamaForSequenceClassification(config, numLabels);
}
