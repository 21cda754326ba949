using Microsoft.ML.LoRA.Checkpoints;

namespace Microsoft.ML.LoRA.Adaptation;

/// <summary>
/// Builds the language model of a config's family, with freshly initialised weights. Domain adaptation is optional
/// for a family: one that has a language-model head here (one line below) can be adapted; others are refused.
/// </summary>
internal static class LanguageModelFactory
{
    static readonly Dictionary<string, (LanguageModelObjective Objective, Func<TransformerConfig, bool, LanguageModel> Create)> ByFamily = new()
    {
        ["bert"] = (LanguageModelObjective.MaskedLanguageModel, (config, pooler) => new BertForMaskedLM(config, pooler)),
        ["distilbert"] = (LanguageModelObjective.MaskedLanguageModel, (config, _) => new DistilBertForMaskedLM(config)),
        ["roberta"] = (LanguageModelObjective.MaskedLanguageModel, (config, _) => new RobertaForMaskedLM(config)),
        ["gpt2"] = (LanguageModelObjective.CausalLanguageModel, (config, _) => new Gpt2LMHeadModel(config)),
    };

    /// <summary>Masked or causal language modelling, as the family was pre-trained.</summary>
    public static LanguageModelObjective ObjectiveOf(TransformerConfig config) => Entry(config).Objective;

    /// <summary>
    /// Creates the masked-LM (BERT, DistilBERT, RoBERTa) or causal-LM (GPT-2) model for <paramref name="config"/>.
    /// Initialisation draws from libtorch's global generator, so it holds <see cref="TorchRandomLock"/>; it runs in a
    /// dispose scope (see <see cref="TorchScopes"/>).
    /// </summary>
    /// <param name="config">The model's configuration.</param>
    /// <param name="bertPooler">BERT only: keep a pooler, so a checkpoint's pooler is carried through unchanged.</param>
    public static LanguageModel Create(TransformerConfig config, bool bertPooler = false)
    {
        var create = Entry(config).Create;
        lock (TorchRandomLock.Sync)
            return TorchScopes.Build(() => create(config, bertPooler));
    }

    static (LanguageModelObjective Objective, Func<TransformerConfig, bool, LanguageModel> Create) Entry(TransformerConfig config) =>
        ByFamily.TryGetValue(config.Family, out var entry) ? entry
            : throw new NotSupportedException($"model family {config.Family} has no language model here");
}
