using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models.Kernels;

/// <summary>
/// A module that holds a <see cref="LayerStack{TLayer}"/> under the name <c>layer</c>, as Hugging Face's encoders
/// do (BERT's <c>encoder.layer.N</c>, DistilBERT's <c>transformer.layer.N</c>); only its own name differs by family.
/// </summary>
internal sealed class EncoderStack<TLayer> : nn.Module<Tensor, Tensor?, Tensor>
    where TLayer : TransformerLayer
{
    readonly LayerStack<TLayer> layer;

    public EncoderStack(string name, int count, Func<TLayer> create) : base(name)
    {
        layer = new LayerStack<TLayer>(count, create);
        register_module("layer", layer);
    }

    /// <summary>The layers, for the base model to run.</summary>
    public ILayerStack Layers => layer;

    public override Tensor forward(Tensor x, Tensor? keyMask) => layer.Run(x, keyMask);
}
