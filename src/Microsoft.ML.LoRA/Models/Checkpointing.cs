using Microsoft.ML.LoRA.Models.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models;

/// <summary>Turns activation checkpointing on or off for every layer stack of a model.</summary>
public static class Checkpointing
{
    /// <summary>
    /// With <paramref name="enabled"/>, training keeps only each layer's input and recomputes the layer in the
    /// backward pass: peak memory falls to about one layer's activations, a step takes about one forward pass longer.
    /// Results are the same as without (dropout masks are replayed).
    /// </summary>
    public static void UseGradientCheckpointing(this nn.Module model, bool enabled = true)
    {
        foreach (var (_, module) in model.named_modules())
            if (module is ICheckpointableStack stack) stack.GradientCheckpointing = enabled;
    }
}
