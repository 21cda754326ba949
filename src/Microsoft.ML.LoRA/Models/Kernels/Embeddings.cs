using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models.Kernels;

/// <summary>Embedding tables as Hugging Face initialises them for every family here.</summary>
internal static class Embeddings
{
    /// <summary>A [count, dim] embedding with weights ~ N(0, 0.02).</summary>
    public static Embedding Normal(long count, long dim)
    {
        lock (TorchRandomLock.Sync)   // both draw from libtorch's global generator
        {
            var e = nn.Embedding(count, dim);
            using (torch.no_grad()) e.weight!.normal_(0, 0.02);
            return e;
        }
    }
}
