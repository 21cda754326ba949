using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models.Kernels;

/// <summary>
/// Dropout in one pass over the tensor, forward and backward, with no mask kept between them: the output is the
/// input times a kept-element scale where <see cref="DropoutMask"/>'s counter-based bits keep it, and the backward
/// pass draws the same bits again from the saved seed to mask the gradient.
/// </summary>
/// <remarks>
/// Against the mask tensor it replaces (a boolean <see cref="DropoutMask.Keep"/> and <c>x.mul(keep)</c>): libtorch
/// turns the boolean mask into a float32 copy before every product, forward and backward, so each dropout cost a mask
/// fill, two conversions and two products, and autograd held the mask until the backward pass. One pass that hashes
/// and scales, with no conversion and no mask kept, is the cheaper of the two
/// (measured: docs/benchmarks.md, "Why the kernels are built as they are"). Float32 CPU tensors only; anything
/// else takes <see cref="Dropout"/>'s mask path.
/// A dropped element is written as 0 even when the input is NaN or infinite (x·0 would give NaN).
/// </remarks>
internal static class FusedDropout
{
    /// <summary>
    /// Whether <paramref name="x"/> can take this path: float32 on the CPU, under 2 GiB (the kernels reach the
    /// tensor's memory through a span of its bytes, which .NET caps at 2³¹ - 1).
    /// </summary>
    public static bool Handles(Tensor x) =>
        x.dtype == ScalarType.Float32 && x.device_type == DeviceType.CPU && x.numel() <= int.MaxValue / sizeof(float);

    /// <summary>
    /// <paramref name="x"/> with each element dropped (set to 0) with probability <paramref name="p"/> and the rest
    /// multiplied by <paramref name="keptScale"/>; 0 &lt; p &lt; 1. Differentiable in x when autograd records.
    /// </summary>
    public static Tensor Apply(Tensor x, double p, float keptScale)
    {
        var draw = new Draw(DropoutMask.NextSeed(), DropoutMask.Threshold(p), keptScale);
        if (!x.requires_grad || !torch.is_grad_enabled()) return draw.Apply(x);
        var output = Node.apply(x, draw);
        FunctionHandles.ReleaseForwardOutput();
        return output;
    }

    /// <summary>One dropout's draw: the seed and threshold of its mask and the scale of the kept elements.</summary>
    internal sealed record Draw(ulong Seed, uint Threshold, float KeptScale)
    {
        /// <summary>
        /// A new tensor: <paramref name="x"/> masked and scaled by this draw, x taking the draw's elements from
        /// <paramref name="elementOffset"/> (even) on: a slice of the tensor the draw is for.
        /// </summary>
        public Tensor Apply(Tensor x, long elementOffset = 0)
        {
            using var contiguous = x.is_contiguous() ? null : x.contiguous();
            var source = contiguous ?? x;
            var result = torch.empty(source.shape, ScalarType.Float32);
            DropoutMask.ScaleKept(source, result, Seed, Threshold, KeptScale, DropoutMask.Best, elementOffset);
            return result;
        }

        /// <summary>Masks and scales <paramref name="x"/> (contiguous) in place by this draw, as <see cref="Apply"/>.</summary>
        public void ApplyInPlace(Tensor x, long elementOffset = 0)
        {
            if (!x.is_contiguous()) throw new ArgumentException("ApplyInPlace needs a contiguous tensor", nameof(x));
            DropoutMask.ScaleKept(x, x, Seed, Threshold, KeptScale, DropoutMask.Best, elementOffset);
        }
    }

    /// <summary>The autograd node: vars are the input and its <see cref="Draw"/>.</summary>
    sealed class Node : torch.autograd.SingleTensorFunction<Node>
    {
        public override string Name => nameof(FusedDropout);

        // The gradient handed back by the previous backward call on this thread; libtorch keeps its own reference once
        // the call returns, so ours is released at the next call (as CheckpointedLayer does).
        [ThreadStatic] static Tensor? _returned;

        public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
        {
            var draw = (Draw)vars[1];
            ctx.save_data("draw", draw);
            ctx.set_materialize_grads(false);
            return FunctionHandles.KeepForwardOutput(ctx, draw.Apply((Tensor)vars[0]));
        }

        public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
        {
            _returned?.Dispose();
            using (gradOutput) _returned = ((Draw)ctx.get_data("draw")).Apply(gradOutput);
            return new List<Tensor> { _returned, null! };
        }
    }
}
