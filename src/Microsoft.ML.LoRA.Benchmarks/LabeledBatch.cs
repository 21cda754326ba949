using Microsoft.ML.LoRA.Models;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>A model input with its labels; owns (and disposes) the tensors.</summary>
public sealed class LabeledBatch : IDisposable
{
    /// <summary>The model input.</summary>
    public ModelInput Input { get; }
    /// <summary>Labels [batch] (int64).</summary>
    public Tensor Labels { get; }
    /// <summary>Examples in the batch.</summary>
    public long Size => Labels.shape[0];
    /// <summary>Padded length of the batch.</summary>
    public long Length => Input.InputIds.shape[1];

    /// <summary>Takes ownership of <paramref name="input"/>'s tensors and <paramref name="labels"/>.</summary>
    public LabeledBatch(ModelInput input, Tensor labels)
    {
        Input = input;
        Labels = labels;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Input.InputIds.Dispose();
        Input.AttentionMask.Dispose();
        Input.TokenTypeIds?.Dispose();
        Labels.Dispose();
    }
}
