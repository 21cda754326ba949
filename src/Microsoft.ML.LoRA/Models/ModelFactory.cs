using Microsoft.ML.LoRA.Checkpoints;

namespace Microsoft.ML.LoRA.Models;

/// <summary>Builds the sequence classifier of a config's family, with freshly initialised weights.</summary>
public static class ModelFactory
{
    /// <summary>
    /// Creates the model for <paramref name="config"/> with <paramref name="numLabels"/> outputs. Initialisation draws
    /// from libtorch's global generator, so it holds <see cref="Training.TorchRandomLock"/>; it runs in a dispose scope
    /// (see <see cref="TorchScopes"/>).
    /// </summary>
    public static SequenceClassifier Create(TransformerConfig config, int numLabels)
    {
        lock (Training.TorchRandomLock.Sync)
        {
            return TorchScopes.Build<SequenceClassifier>(() => config.Family switch
            {
                ModelFamily.Bert => new BertForSequenceClassification(config, numLabels),
                ModelFamily.Roberta => new RobertaForSequenceClassification(config, numLabels),
                ModelFamily.DistilBert => new DistilBertForSequenceClassification(config, numLabels),
                ModelFamily.Gpt2 => new Gpt2ForSequenceClassification(config, numLabels),
                _ => throw new NotSupportedException($"model family {config.Family} is not supported"),
            });
        }
    }
}
