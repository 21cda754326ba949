using Microsoft.ML.LoRA.Checkpoints;

namespace Microsoft.ML.LoRA.Models;

/// <summary>Builds the sequence classifier of a config's family, with freshly initialised weights.</summary>
public static class ModelFactory
{
    /// <summary>
    /// Creates the model for <paramref name="config"/> with <paramref name="numLabels"/> outputs. Initialisation draws
    /// from libtorch's global generator, so it holds <see cref="TorchRandomLock"/>; it runs in a dispose scope (see
    /// <see cref="TorchScopes"/>).
    /// </summary>
    public static SequenceClassifier Create(TransformerConfig config, int numLabels)
    {
        var family = ModelFamilies.Of(config);
        lock (TorchRandomLock.Sync)
            return TorchScopes.Build(() => family.CreateClassifier(config, numLabels));
    }
}
