using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>
/// Random batches shaped as the anchor shapes them: ids uniform in [1000, vocab), a mask of ones (no padding) and
/// random 0/1 labels.
/// </summary>
public static class SyntheticBatch
{
    /// <summary>Draws a [<paramref name="batch"/>, <paramref name="seq"/>] batch for <paramref name="config"/>.</summary>
    public static LabeledBatch Create(TransformerConfig config, int batch, int seq, int numLabels = 2)
    {
        if (seq > config.MaxPositions) throw new ArgumentException($"--seq {seq} is longer than the model's {config.MaxPositions} positions");
        long low = Math.Min(1000, config.VocabSize - 1);
        var ids = torch.randint(low, config.VocabSize, new long[] { batch, seq }, dtype: ScalarType.Int64);
        var mask = torch.ones_like(ids);
        var labels = torch.randint(0, numLabels, new long[] { batch }, dtype: ScalarType.Int64);
        return new LabeledBatch(new ModelInput(ids, mask), labels);
    }
}
