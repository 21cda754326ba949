using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models.Kernels;

/// <summary>
/// Activation (gradient) checkpointing of one transformer layer: the forward pass keeps only the layer's input, and
/// the backward pass runs the layer again, with the same dropout masks, to get the activations its gradient needs.
/// Training memory then holds one layer's activations instead of every layer's, for about one extra forward pass of
/// time. <see cref="LayerStack{TLayer}"/> applies it per layer; set per model with Models.Checkpointing.UseGradientCheckpointing.
/// </summary>
internal static class LayerCheckpointing
{
    /// <summary>
    /// <paramref name="layer"/>(x) as one checkpointed autograd node (called with autograd recording). Anything
    /// <paramref name="layer"/> captures (the attention mask) must stay alive until the backward pass.
    /// </summary>
    public static Tensor Checkpointed(Func<Tensor, Tensor> layer, Tensor x) =>
        // A node is recorded only when some input requires a gradient; the first layer's input (frozen embeddings)
        // may not, so a gradient-requiring empty tensor stands in and always receives none.
        CheckpointedLayer.apply(x, GradientAnchor.Value, layer, x.requires_grad);

    // Lives as long as its thread: detached from whatever dispose scope is open when it is first used.
    static readonly ThreadLocal<Tensor> GradientAnchor = new(() =>
    {
        using var scope = torch.NewDisposeScope();
        return scope.Detach(torch.empty(0, requires_grad: true));
    });

    sealed class CheckpointedLayer : torch.autograd.SingleTensorFunction<CheckpointedLayer>
    {
        public override string Name => nameof(CheckpointedLayer);

        // vars: x, anchor, layer, whether x requires a gradient.
        public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
        {
            var x = (Tensor)vars[0];
            var rngBefore = torch.get_rng_state();
            ctx.save_for_backward(new List<Tensor> { x, rngBefore });
            ctx.save_data("layer", vars[2]);
            ctx.save_data("inputNeedsGrad", vars[3]);
            return ((Func<Tensor, Tensor>)vars[2])(x);
        }

        // The gradient handed back by the previous backward call on this thread. libtorch copies returned tensors
        // when the call returns, so it is released at the next call rather than kept until the step's dispose scope
        // ends (which would keep every layer's input gradient alive through the whole backward pass).
        [ThreadStatic] static Tensor? _returned;

        public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
        {
            _returned?.Dispose();
            _returned = null;
            var saved = ctx.get_saved_variables();
            try
            {
                var layer = (Func<Tensor, Tensor>)ctx.get_data("layer");
                bool inputNeedsGrad = (bool)ctx.get_data("inputNeedsGrad");
                using var input = saved[0].detach().requires_grad_(inputNeedsGrad);
                Tensor output;
                // Replay the forward pass's random draws (dropout masks), then put the generator back where it was.
                using (var rngNow = torch.get_rng_state())
                {
                    torch.set_rng_state(saved[1]);
                    using (torch.enable_grad()) output = layer(input);
                    torch.set_rng_state(rngNow);
                }
                using (output) torch.autograd.backward(output, gradOutput);
                using var inputGrad = inputNeedsGrad ? input.grad : null;   // .grad makes a new handle each time
                _returned = inputGrad?.detach();
                return new List<Tensor> { _returned!, null!, null!, null! };
            }
            finally
            {
                // Our handles on the saved input and on the incoming gradient; libtorch keeps its own references.
                foreach (var t in saved) t.Dispose();
                gradOutput.Dispose();
            }
        }
    }
}

/// <summary>A stack of transformer layers that can checkpoint each layer (see <see cref="LayerCheckpointing"/>).</summary>
internal interface ICheckpointableStack
{
    bool GradientCheckpointing { get; set; }
}
