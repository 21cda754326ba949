using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models.Quantization;

namespace Microsoft.ML.LoRA.Models;

/// <summary>Builds the sequence classifier of a config's family, with freshly initialised weights.</summary>
public static class ModelFactory
{
    /// <summary>
    /// Creates the model for <paramref name="config"/> with <paramref name="numLabels"/> outputs. Initialisation draws
    /// from libtorch's global generator, so it holds <see cref="TorchRandomLock"/>; it runs in a dispose scope (see
    /// <see cref="TorchScopes"/>). With <paramref name="quantization"/> the linear layers of the transformer layers
    /// keep their frozen weights quantized, each layer packed as soon as it is built (<see cref="QuantizedBase"/>).
    /// </summary>
    public static SequenceClassifier Create(TransformerConfig config, int numLabels, QuantizedBase? quantization = null)
    {
        var family = ModelFamilies.Of(config);
        lock (TorchRandomLock.Sync)
            return TorchScopes.Build(() => QuantizedBase.Building(quantization, () => family.CreateClassifier(config, numLabels)));
    }
}
