using TorchSharp;
using Microsoft.ML.LoRA.Models.Quantization;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models.Kernels;

/// <summary>
/// A transformer's layers (registered as a ModuleList, so their names stay Hugging Face's <c>layer.N</c> / <c>h.N</c>)
/// and the one place that runs them: each layer's feed-forward in token chunks (<see cref="TokenChunks"/>), each layer
/// checkpointed in training when <see cref="GradientCheckpointing"/> is on (<see cref="LayerCheckpointing"/>), and
/// with a <see cref="HeadReadout"/> the last layer computed for the read rows only. Families write their layer
/// (<see cref="TransformerLayer"/>) and embeddings, never these.
/// </summary>
internal sealed class LayerStack<TLayer> : ModuleList<TLayer>, ICheckpointableStack, ILayerStack
    where TLayer : TransformerLayer
{
    /// <summary>
    /// Builds <paramref name="count"/> layers with <paramref name="create"/>, one after another; a model built for a
    /// quantized base (<see cref="QuantizedBase"/>) has each layer quantized before the next is created.
    /// </summary>
    public LayerStack(int count, Func<TLayer> create) : this(count, _ => create())
    {
    }

    /// <summary>As <see cref="LayerStack{TLayer}(int, Func{TLayer})"/>, for layers that depend on their index.</summary>
    public LayerStack(int count, Func<int, TLayer> create)
        : base(Enumerable.Range(0, count).Select(i => QuantizedBase.LayerBuilt(create(i))).ToArray())
    {
    }

    /// <summary>Recompute each layer in the backward pass instead of keeping its activations (see <see cref="LayerCheckpointing"/>).</summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>
    /// Runs the layers one after another from <paramref name="x"/> [batch, seq, hidden] with <paramref name="mask"/>
    /// (boolean [batch, 1, 1 or seq, seq], or null). Returns the last layer's output: all positions, or with a
    /// <paramref name="readout"/> only its rows ([batch, 1, hidden]), the last layer computing no others.
    /// </summary>
    public Tensor Run(Tensor x, Tensor? mask, HeadReadout? readout = null)
    {
        bool checkpoint = GradientCheckpointing && training && torch.is_grad_enabled();
        // The caller disposes its mask and readout when the forward pass returns; recomputed layers need them in the
        // backward pass, so they get aliases of their own (freed with the training step's dispose scope).
        var layerMask = checkpoint ? mask?.alias() : mask;
        var read = checkpoint ? readout?.Alias() : readout;
        var h = x.alias();
        for (int i = 0; i < Count; i++)
        {
            var layer = this[i];
            Func<Tensor, Tensor> run = read is not null && i == Count - 1
                ? input =>
                {
                    using var rows = read.Rows(input);
                    using var positions = read.RowPositions(input);
                    return layer.Rows(rows, input, read.Mask ?? layerMask, positions);
                }
                : input => layer.Rows(input, input, layerMask);
            var next = checkpoint ? LayerCheckpointing.Checkpointed(run, h) : run(h);
            h.Dispose();
            h = next;
        }
        return h;
    }
}

/// <summary>A <see cref="LayerStack{TLayer}"/> whatever its layer type.</summary>
internal interface ILayerStack
{
    /// <inheritdoc cref="LayerStack{TLayer}.Run"/>
    Tensor Run(Tensor x, Tensor? mask, HeadReadout? readout = null);
}
