using Microsoft.ML.LoRA.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>Builds a batch from token id lists, padded to the batch's longest list or to a fixed length.</summary>
public static class DynamicPadding
{
    /// <summary>
    /// The examples <paramref name="indices"/> of <paramref name="tokens"/> as one batch: ids right-padded with
    /// <paramref name="padId"/> to <paramref name="padTo"/> (null: the longest of these examples), mask 1 on real tokens.
    /// </summary>
    public static LabeledBatch Collate(IReadOnlyList<int[]> tokens, IReadOnlyList<int> labels, int[] indices, long padId, int? padTo = null)
    {
        int width = padTo ?? indices.Max(i => tokens[i].Length);
        var ids = new long[indices.Length * width];
        var mask = new long[indices.Length * width];
        var y = new long[indices.Length];
        for (int row = 0; row < indices.Length; row++)
        {
            var t = tokens[indices[row]];
            int n = Math.Min(t.Length, width);
            for (int j = 0; j < width; j++)
            {
                ids[row * width + j] = j < n ? t[j] : padId;
                mask[row * width + j] = j < n ? 1 : 0;
            }
            y[row] = labels[indices[row]];
        }
        var shape = new long[] { indices.Length, width };
        return new LabeledBatch(new ModelInput(torch.tensor(ids, shape), torch.tensor(mask, shape)), torch.tensor(y));
    }
}
