using Microsoft.ML.LoRA.Models.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// A family's base model (Hugging Face's BertModel, DistilBertModel, GPT2Model): embeddings, the layer stack, and
/// for pre-norm decoders a final norm. A family says how it embeds, which mask its layers take and what follows the
/// stack; running the stack and reading a head's rows are written here once.
/// </summary>
public abstract class TransformerModel : nn.Module<ModelInput, Tensor>
{
    protected TransformerModel(string name) : base(name)
    {
    }

    /// <summary>The embedded input [batch, seq, hidden], dropout included.</summary>
    protected abstract Tensor Embed(ModelInput input);

    /// <summary>The layers, run by the stack (see <see cref="LayerStack{TLayer}"/>).</summary>
    private protected abstract ILayerStack Layers { get; }

    /// <summary>The mask every layer takes: by default a bidirectional key mask of the padding, null when there is none.</summary>
    protected virtual Tensor? LayerMask(ModelInput input) => Attention.KeyMask(input.AttentionMask);

    /// <summary>What follows the last layer (GPT-2's ln_f); by default nothing. Returns a tensor the caller owns.</summary>
    protected virtual Tensor AfterLayers(Tensor last) => last.alias();

    /// <summary>Returns the last hidden states [batch, seq, hidden].</summary>
    public override Tensor forward(ModelInput input) => Forward(input, readout: null);

    /// <summary>The first token's last hidden state, [batch, 1, hidden], computed without the rest of the last layer.</summary>
    internal Tensor FirstTokenState(ModelInput input)
    {
        using var readout = HeadReadout.FirstToken();
        return Forward(input, readout);
    }

    /// <summary>Each row's last real token's last hidden state, [batch, 1, hidden], attending causally (decoders).</summary>
    internal Tensor LastRealTokenState(ModelInput input)
    {
        using var readout = HeadReadout.LastRealToken(input.AttentionMask);
        return Forward(input, readout);
    }

    /// <summary>
    /// The last hidden states: [batch, seq, hidden], or [batch, 1, hidden] at the rows of <paramref name="readout"/>
    /// when one is given (the last layer then computes only those rows).
    /// </summary>
    internal Tensor Forward(ModelInput input, HeadReadout? readout)
    {
        using var mask = LayerMask(input);
        using var embedded = Embed(input);
        using var last = Layers.Run(embedded, mask, readout);
        return AfterLayers(last);
    }
}
