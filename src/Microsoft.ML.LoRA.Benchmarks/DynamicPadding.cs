using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tokenization;
using TorchSharp;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>Builds a labelled batch from token id lists with the library's <see cref="BatchCollator"/>.</summary>
public static class DynamicPadding
{
    /// <summary>
    /// The examples <paramref name="indices"/> of <paramref name="tokens"/> as one batch: ids right-padded with
    /// <paramref name="padId"/> to <paramref name="padTo"/> (null: the longest of these examples), mask 1 on real tokens.
    /// </summary>
    public static LabeledBatch Collate(IReadOnlyList<int[]> tokens, IReadOnlyList<int> labels, int[] indices, long padId, int? padTo = null)
    {
        var examples = indices.Select(i => new EncodedText(tokens[i], new int[tokens[i].Length])).ToList();
        var input = BatchCollator.Collate(examples, checked((int)padId), includeTokenTypeIds: false, padTo);
        return new LabeledBatch(input, torch.tensor(indices.Select(i => (long)labels[i]).ToArray()));
    }
}
