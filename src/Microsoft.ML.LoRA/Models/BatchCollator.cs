using Microsoft.ML.LoRA.Tokenization;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models;

/// <summary>Pads a batch of encoded examples into model input tensors (tokenizer output in, <see cref="ModelInput"/> out).</summary>
public static class BatchCollator
{
    /// <summary>
    /// Stacks <paramref name="batch"/> into int64 tensors of shape [batch, longest example in the batch] (dynamic
    /// padding: never wider than the batch needs). Input ids are padded on the right with
    /// <paramref name="padTokenId"/>; the attention mask is 1 over real tokens and 0 over padding; token type ids
    /// (padded with 0) are included only when <paramref name="includeTokenTypeIds"/>. The tensors are on the CPU and
    /// belong to the caller. With <paramref name="padTo"/> every row is padded to that width instead (what a loader
    /// without dynamic padding does; the benchmarks compare the two).
    /// </summary>
    /// <exception cref="ArgumentException">The batch is empty, an example is null, empty or has mismatched token types, or an example is longer than <paramref name="padTo"/>.</exception>
    public static ModelInput Collate(IReadOnlyList<EncodedText> batch, int padTokenId, bool includeTokenTypeIds, int? padTo = null)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 0) throw new ArgumentException("Cannot collate an empty batch.", nameof(batch));
        ArgumentOutOfRangeException.ThrowIfNegative(padTokenId);
        int width = 0;
        for (int i = 0; i < batch.Count; i++)
        {
            var example = batch[i] ?? throw new ArgumentException($"Batch example {i} is null.", nameof(batch));
            if (example.InputIds is null || example.InputIds.Length == 0)
                throw new ArgumentException($"Batch example {i} has no tokens; every example needs at least one.", nameof(batch));
            if (includeTokenTypeIds && (example.TokenTypeIds is null || example.TokenTypeIds.Length != example.InputIds.Length))
                throw new ArgumentException(
                    $"Batch example {i} has {example.TokenTypeIds?.Length ?? 0} token type ids for {example.InputIds.Length} tokens.", nameof(batch));
            width = Math.Max(width, example.InputIds.Length);
        }
        if (padTo is int fixedWidth)
        {
            if (fixedWidth < width) throw new ArgumentException($"An example has {width} tokens, more than the {fixedWidth} to pad to.", nameof(padTo));
            width = fixedWidth;
        }
        var ids = new long[batch.Count * width];
        var mask = new long[ids.Length];
        var types = includeTokenTypeIds ? new long[ids.Length] : null;
        Array.Fill(ids, padTokenId);
        for (int i = 0; i < batch.Count; i++)
        {
            var example = batch[i];
            int row = i * width;
            for (int j = 0; j < example.InputIds.Length; j++)
            {
                ids[row + j] = example.InputIds[j];
                mask[row + j] = 1;
                if (types is not null) types[row + j] = example.TokenTypeIds[j];
            }
        }
        long[] shape = [batch.Count, width];
        return new ModelInput(tensor(ids, shape), tensor(mask, shape), types is null ? null : tensor(types, shape));
    }
}
