using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models.Kernels;

/// <summary>
/// Runs a position-wise block (a layer's feed-forward) over a batch's tokens a chunk at a time, so that its widest
/// activation stays under <see cref="ChunkBytes"/>.
/// </summary>
/// <remarks>
/// glibc serves any block above its mmap threshold (32 MiB at most, whatever mallopt asks) with a fresh mapping that
/// is returned to the kernel when freed, so each such tensor has every page faulted in and zeroed again the next time.
/// A DistilBERT feed-forward over 32 x 128 tokens is 48 MiB wide; left whole, every inference batch faults its pages
/// in again (measured: docs/benchmarks.md, "Why the kernels are built as they are"). In chunks the
/// same blocks are reused from the heap. The result is the same: the block treats every token alike. Autograd records
/// each chunk, so training works through it unchanged.
/// </remarks>
internal static class TokenChunks
{
    /// <summary>The most bytes the widest activation of one chunk may take.</summary>
    public const long ChunkBytes = 16L << 20;

    /// <summary>
    /// <paramref name="block"/> applied to <paramref name="x"/> [..., features], whose tokens it treats independently
    /// and whose widest activation has <paramref name="widestFeatures"/> features per token. Returns [..., out].
    /// </summary>
    public static Tensor Map(Tensor x, long widestFeatures, Func<Tensor, Tensor> block)
    {
        long features = x.shape[^1];
        long tokens = x.numel() / Math.Max(1, features);
        long maxRows = Math.Max(1, ChunkBytes / (widestFeatures * x.element_size()));
        if (tokens <= maxRows) return block(x);

        long chunks = (tokens + maxRows - 1) / maxRows;
        long rows = (tokens + chunks - 1) / chunks;   // equal chunks rather than full ones and a small remainder
        using var flat = x.reshape(-1, features);
        var outputs = new List<Tensor>((int)chunks);
        try
        {
            foreach (var chunk in flat.split(rows, 0))
                using (chunk) outputs.Add(block(chunk));
            using var joined = torch.cat(outputs, 0);
            var shape = x.shape.ToArray();
            shape[^1] = joined.shape[1];
            return joined.view(shape);
        }
        finally
        {
            foreach (var output in outputs) output.Dispose();
        }
    }
}
