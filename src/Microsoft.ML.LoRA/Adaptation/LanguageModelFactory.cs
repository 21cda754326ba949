using Microsoft.ML.LoRA.Checkpoints;

namespace Microsoft.ML.LoRA.Adaptation;

/// <summary>Builds the language model of a config's family, with freshly initialised weights.</summary>
internal static class LanguageModelFactory
{
    /// <summary>
    /// Creates the masked-LM (BERT, DistilBERT, RoBERTa) or causal-LM (GPT-2) model for <paramref name="config"/>.
    /// Initialisation draws from libtorch's global generator, so it holds <see cref="Training.TorchRandomLock"/>; it
    /// runs in a dispose scope (see <see cref="TorchScopes"/>).
    /// </summary>
    /// <param name="config">The model's configuration.</param>
    /// <param name="bertPooler">BERT only: keep a pooler, so a checkpoint's pooler is carried through unchanged.</param>
    public static LanguageModel Create(TransformerConfig config, bool bertPooler = false)
    {
        lock (Training.TorchRandomLock.Sync)
        {
            return TorchScopes.Build<LanguageModel>(() => config.Family switch
            {
                ModelFamily.Bert => new BertForMaskedLM(config, bertPooler),
                ModelFamily.DistilBert => new DistilBertForMaskedLM(config),
                ModelFamily.Roberta => new RobertaForMaskedLM(config),
                ModelFamily.Gpt2 => new Gpt2LMHeadModel(config),
                _ => throw new NotSupportedException($"model family {config.Family} has no language model here"),
            });
        }
    }
}
