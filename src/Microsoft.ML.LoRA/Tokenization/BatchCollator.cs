using Microsoft.ML.LoRA.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>Pads a batch of encoded texts to its longest example and turns it into model input tensors.</summary>
public static class BatchCollator
{
    public static ModelInput Collate(IReadOnlyList<EncodedText> batch, int padTokenId, bool includeTokenTypeIds)
    {
        if (batch.Count == 0) throw new ArgumentException("cannot collate an empty batch", nameof(batch));
        int width = batch.Max(b => b.Length);
        var ids = new long[batch.Count * width];
        var mask = new long[batch.Count * width];
        var types = includeTokenTypeIds ? new long[batch.Count * width] : null;
        for (int r = 0; r < batch.Count; r++)
        {
            var e = batch[r];
            for (int c = 0; c < width; c++)
            {
                bool real = c < e.Length;
                ids[r * width + c] = real ? e.InputIds[c] : padTokenId;
                mask[r * width + c] = real ? 1 : 0;
                if (types is not null) types[r * width + c] = real ? e.TokenTypeIds[c] : 0;
            }
        }
        var shape = new long[] { batch.Count, width };
        return new ModelInput(torch.tensor(ids, shape), torch.tensor(mask, shape), types is null ? null : torch.tensor(types, shape));
    }
}
