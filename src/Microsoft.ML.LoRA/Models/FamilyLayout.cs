using Microsoft.ML.LoRA.Checkpoints;

namespace Microsoft.ML.LoRA.Models;

/// <summary>The LoRA switches of <see cref="Lora.LoraOptions"/>, each meaning a role a linear layer plays.</summary>
public enum LoraSwitch { Query, Key, Value, Projection, Mlp, Head }

/// <summary>
/// Where things live in one family's module tree, by Hugging Face name: the base model's prefix, the classification
/// head, the modules a base checkpoint may lack, which modules each LoRA switch means, and the base modules that
/// follow the last transformer layer (they train with it under <see cref="Lora.FineTuning.LastLayers"/>).
/// </summary>
public sealed record FamilyLayout(
    ModelFamily Family,
    string BasePrefix,
    IReadOnlyList<string> HeadModules,
    IReadOnlyList<string> CreatableModules,
    IReadOnlyDictionary<LoraSwitch, string> SwitchPatterns,
    IReadOnlyList<string> IgnoredCheckpointPrefixes,
    IReadOnlyList<string> ModulesAfterLayers)
{
    /// <summary>The layout of a family.</summary>
    public static FamilyLayout For(ModelFamily family) => family switch
    {
        ModelFamily.Bert => Bert,
        ModelFamily.Roberta => Roberta,
        ModelFamily.DistilBert => DistilBert,
        ModelFamily.Gpt2 => Gpt2,
        _ => throw new ArgumentOutOfRangeException(nameof(family)),
    };

    static readonly Dictionary<LoraSwitch, string> BertSwitches = new()
    {
        [LoraSwitch.Query] = @".*\.attention\.self\.query",
        [LoraSwitch.Key] = @".*\.attention\.self\.key",
        [LoraSwitch.Value] = @".*\.attention\.self\.value",
        [LoraSwitch.Projection] = @".*\.attention\.output\.dense",
        [LoraSwitch.Mlp] = @".*\.layer\.\d+\.(intermediate|output)\.dense",
    };

    public static readonly FamilyLayout Bert = new(ModelFamily.Bert, "bert",
        new[] { "classifier" },
        new[] { "bert.pooler", "classifier" },
        With(BertSwitches, "classifier"),
        new[] { "cls.", "bert.embeddings.position_ids", "embeddings.position_ids" },
        new[] { "bert.pooler" });

    public static readonly FamilyLayout Roberta = new(ModelFamily.Roberta, "roberta",
        new[] { "classifier.dense", "classifier.out_proj" },
        new[] { "classifier" },
        With(BertSwitches, @"classifier\.(dense|out_proj)"),
        new[] { "lm_head.", "roberta.pooler.", "pooler.", "roberta.embeddings.position_ids", "embeddings.position_ids" },
        Array.Empty<string>());

    public static readonly FamilyLayout DistilBert = new(ModelFamily.DistilBert, "distilbert",
        new[] { "pre_classifier", "classifier" },
        new[] { "pre_classifier", "classifier" },
        new Dictionary<LoraSwitch, string>
        {
            [LoraSwitch.Query] = @".*\.attention\.q_lin",
            [LoraSwitch.Key] = @".*\.attention\.k_lin",
            [LoraSwitch.Value] = @".*\.attention\.v_lin",
            [LoraSwitch.Projection] = @".*\.attention\.out_lin",
            [LoraSwitch.Mlp] = @".*\.ffn\.lin[12]",
            [LoraSwitch.Head] = "pre_classifier|classifier",
        },
        new[] { "vocab_transform.", "vocab_layer_norm.", "vocab_projector.", "distilbert.embeddings.position_ids" },
        Array.Empty<string>());

    public static readonly FamilyLayout Gpt2 = new(ModelFamily.Gpt2, "transformer",
        new[] { "score" },
        new[] { "score" },
        new Dictionary<LoraSwitch, string>
        {
            // GPT-2 computes query, key and value with one fused layer; any of the three switches adapts it.
            [LoraSwitch.Query] = @".*\.attn\.c_attn",
            [LoraSwitch.Key] = @".*\.attn\.c_attn",
            [LoraSwitch.Value] = @".*\.attn\.c_attn",
            [LoraSwitch.Projection] = @".*\.attn\.c_proj",
            [LoraSwitch.Mlp] = @".*\.mlp\.c_(fc|proj)",
            [LoraSwitch.Head] = "score",
        },
        new[] { "lm_head.", ".attn.bias", ".attn.masked_bias" },
        new[] { "transformer.ln_f" });

    static Dictionary<LoraSwitch, string> With(Dictionary<LoraSwitch, string> switches, string head) =>
        new(switches) { [LoraSwitch.Head] = head };
}
