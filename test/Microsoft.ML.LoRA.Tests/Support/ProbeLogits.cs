using Microsoft.ML.LoRA.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tests.Support;

/// <summary>
/// One fixed batch (two rows of four token ids that every fixture's vocabulary holds) through a model: the probe the
/// LoRA tests compare two models by.
/// </summary>
public static class ProbeLogits
{
    /// <summary>The model's logits for the probe batch, in its current mode, with autograd as the caller has it.</summary>
    public static Tensor Forward(SequenceClassifier model)
    {
        var ids = torch.tensor(new long[] { 2, 5, 7, 9, 3, 4, 1, 6 }).reshape(2, 4);
        return model.forward(new ModelInput(ids, torch.ones_like(ids)));
    }

    /// <summary>The logits in eval mode without autograd, flattened.</summary>
    public static float[] Of(SequenceClassifier model)
    {
        model.eval();
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        return Forward(model).flatten().data<float>().ToArray();
    }

    /// <summary>The largest absolute difference between two probes.</summary>
    public static float MaxDifference(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max();
}
