using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models.Kernels;

/// <summary>
/// One transformer layer as its two halves: the attention sublayer, whose output at a position depends on every
/// position's keys and values, and the position-wise rest (feed-forward, residual, norm). <see cref="LayerStack{TLayer}"/>
/// runs the halves: the rest in token chunks (<see cref="TokenChunks"/>), and for the last layer of a head readout
/// the attention for the read rows only (<see cref="HeadReadout"/>). A family writes these two and nothing of the stack.
/// </summary>
public abstract class TransformerLayer : nn.Module<Tensor, Tensor?, Tensor>
{
    /// <param name="name">The module name.</param>
    /// <param name="feedForwardWidth">The widest per-token activation of <see cref="FeedForward"/> (the intermediate size), to size its chunks.</param>
    protected TransformerLayer(string name, long feedForwardWidth) : base(name)
    {
        FeedForwardWidth = feedForwardWidth;
    }

    internal long FeedForwardWidth { get; }

    /// <summary>
    /// The attention sublayer with its residual (and, post-norm, its norm) at <paramref name="rows"/> [batch, r, hidden],
    /// rows taken from the layer input <paramref name="x"/> [batch, seq, hidden] whose every position supplies keys
    /// and values. <paramref name="mask"/>: boolean [batch, 1, r or 1, seq] (true = may attend), or null for none.
    /// </summary>
    protected internal abstract Tensor Attend(Tensor rows, Tensor x, Tensor? mask);

    /// <summary>
    /// <see cref="Attend(Tensor, Tensor, Tensor?)"/> for a layer whose attention depends on where its rows sit (rotary
    /// position embeddings, a sliding window): <paramref name="rowPositions"/> is each row's position in x, int64
    /// [batch, r], or null when rows is x itself (positions 0 .. seq-1). A head readout's row is not at the same place
    /// in every example, so the layer cannot tell it from the row alone. Layers that need no positions keep this default.
    /// </summary>
    protected internal virtual Tensor Attend(Tensor rows, Tensor x, Tensor? mask, Tensor? rowPositions) => Attend(rows, x, mask);

    /// <summary>The position-wise rest of the layer on the attention sublayer's output [.., hidden]: same shape out.</summary>
    protected internal abstract Tensor FeedForward(Tensor attended);

    /// <summary>
    /// <paramref name="h"/> + <paramref name="block"/>(<paramref name="norm"/>(<paramref name="h"/>)): the
    /// position-wise half of a pre-norm layer, its feed-forward read through its own norm and added to the residual.
    /// </summary>
    protected static Tensor PreNormResidual(nn.Module<Tensor, Tensor> norm, nn.Module<Tensor, Tensor> block, Tensor h)
    {
        using var normed = norm.forward(h);
        using var output = block.forward(normed);
        return output.add(h, Scalars.One);
    }

    /// <summary>The layer's output at every position of <paramref name="x"/>.</summary>
    public override Tensor forward(Tensor x, Tensor? mask) => Rows(x, x, mask);

    /// <summary>
    /// The layer's output at <paramref name="rows"/> of <paramref name="x"/> (all of x when rows is x, and then
    /// <paramref name="rowPositions"/> is null; otherwise each row's position in x, int64 [batch, r]).
    /// </summary>
    internal Tensor Rows(Tensor rows, Tensor x, Tensor? mask, Tensor? rowPositions = null)
    {
        using var attended = Attend(rows, x, mask, rowPositions);
        return TokenChunks.Map(attended, FeedForwardWidth, FeedForward);
    }
}
