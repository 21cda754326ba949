using Microsoft.ML.LoRA.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.LoRA.Models.Kernels;

/// <summary>The hidden activations named in Hugging Face configs: the one list of what the models can apply.</summary>
internal static class Activations
{
    /// <summary>
    /// Every supported name: "gelu" (erf), the tanh approximations "gelu_new" / "gelu_pytorch_tanh" / "gelu_fast",
    /// "relu", and "silu" (x·sigmoid(x), the gate of SwiGLU feed-forwards).
    /// </summary>
    public static readonly IReadOnlyList<string> Supported = new[] { "gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu", "silu" };

    public static Tensor Apply(string name, Tensor x) => name switch
    {
        "gelu" => F.gelu(x),
        "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => F.gelu(x, TorchSharp.Modules.GELU.Approximate.tanh),
        "relu" => F.relu(x),
        "silu" => F.silu(x),
        _ => throw new NotSupportedException($"activation '{name}' is not supported"),
    };

    /// <summary>Throws, naming the config, when <paramref name="name"/> is not one of <see cref="Supported"/>.</summary>
    public static void Check(string name, string source)
    {
        if (!Supported.Contains(name))
            throw new CheckpointFormatException(source, $"activation '{name}' is not supported ({string.Join(", ", Supported)})");
    }
}
