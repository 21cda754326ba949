using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models.Kernels;
using TorchSharp;
using static TorchSharp.torch;
using Dropout = Microsoft.ML.LoRA.Models.Kernels.Dropout;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// up-projection, the config's activation, down-projection, dropout: the feed-forward block under the names a
/// family's checkpoint uses (DistilBERT's ffn.{lin1,lin2}; GPT-2's mlp.{c_fc,c_proj}, stored [in, out]).
/// </summary>
internal sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    // A tuple rather than fields of their own, so TorchSharp does not register them again under the field names (see SelfAttention).
    readonly (LoraLinear Up, LoraLinear Down) _layers;
    readonly string _activation;
    readonly double _dropout;

    public FeedForward(string name, TransformerConfig config, (string Up, string Down) projections) : base(name)
    {
        _layers = (new LoraLinear(config.HiddenSize, config.IntermediateSize, fanInFanOut: config.FanInFanOut),
            new LoraLinear(config.IntermediateSize, config.HiddenSize, fanInFanOut: config.FanInFanOut));
        register_module(projections.Up, _layers.Up);
        register_module(projections.Down, _layers.Down);
        _activation = config.Activation;
        _dropout = config.HiddenDropout;
    }

    public override Tensor forward(Tensor x)
    {
        using var up = _layers.Up.forward(x);
        using var activated = Activations.Apply(_activation, up);
        using var down = _layers.Down.forward(activated);
        return Dropout.Apply(down, _dropout, training);
    }
}
