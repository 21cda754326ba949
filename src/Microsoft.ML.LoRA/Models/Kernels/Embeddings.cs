using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models.Kernels;

/// <summary>Embedding tables as Hugging Face initialises them for every family here.</summary>
internal static class Embeddings
{
    /// <summary>A [count, dim] embedding with weights ~ N(0, 0.02), on TorchSharp's default device.</summary>
    /// <remarks>
    /// TorchSharp's Embedding is a native libtorch module: its constructor allocates and initialises the table on the
    /// CPU whatever torch.get_default_device() says, and Embedding_from_pretrained builds one too before taking the
    /// given table (measured: the table stayed resident). On the meta device, where <c>lora inspect</c> builds a model
    /// only to count its parameters, that would be the one real allocation (500 MB for a 7B model's 32000 x 4096
    /// vocabulary), so there the module is built with a single row and given a [count, dim] meta table as its weight,
    /// which holds no storage. On a real device the module is built as before, so seeded models draw the same weights.
    /// </remarks>
    public static Embedding Normal(long count, long dim)
    {
        lock (TorchRandomLock.Sync)   // both draw from libtorch's global generator
        {
            if (torch.get_default_device().type == DeviceType.META)
            {
                var shell = nn.Embedding(1, dim);
                shell.weight = new Parameter(torch.empty(count, dim), requires_grad: true);
                return shell;
            }
            var e = nn.Embedding(count, dim);
            using (torch.no_grad()) e.weight!.normal_(0, 0.02);
            return e;
        }
    }
}
