using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models;

namespace Microsoft.ML.LoRA.Adaptation;

/// <summary>
/// Builds the language model of a config's family, with freshly initialised weights. Domain adaptation is optional
/// for a family: one with a language-model head here can be adapted; others are refused. The family folders sit below
/// this layer and cannot name it, so a family's head is added here, keyed by its descriptor in <see cref="ModelFamilies"/>.
/// </summary>
internal static class LanguageModelFactory
{
    static readonly Dictionary<ModelFamily, (LanguageModelObjective Objective, Func<TransformerConfig, bool, LanguageModel> Create)> ByFamily = new()
    {
        [ModelFamilies.Get<BertFamily>()] = (LanguageModelObjective.MaskedLanguageModel, (config, pooler) => new BertForMaskedLM(config, pooler)),
        [ModelFamilies.Get<DistilBertFamily>()] = (LanguageModelObjective.MaskedLanguageModel, (config, _) => new DistilBertForMaskedLM(config)),
        [ModelFamilies.Get<RobertaFamily>()] = (LanguageModelObjective.MaskedLanguageModel, (config, _) => new RobertaForMaskedLM(config)),
        [ModelFamilies.Get<Gpt2Family>()] = (LanguageModelObjective.CausalLanguageModel, (config, _) => new Gpt2LMHeadModel(config)),
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
        ModelFamilies.Find(config.Family) is { } family && ByFamily.TryGetValue(family, out var entry) ? entry
            : throw new NotSupportedException($"model family {config.Family} has no language model here");
}
