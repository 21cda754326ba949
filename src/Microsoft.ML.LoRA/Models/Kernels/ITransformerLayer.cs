using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models.Kernels;

/// <summary>
/// One transformer layer as its two halves: the attention sublayer, whose output at a position depends on every
/// position's keys and values, and the position-wise rest (feed-forward, residual, norm). <see cref="LayerStack{TLayer}"/>
/// runs the halves: the rest in token chunks (<see cref="TokenChunks"/>), and for the last layer of a head readout
/// the attention for the read rows only (<see cref="HeadReadout"/>). A family writes these two and nothing of the stack.
/// </summary>
internal interface ITransformerLayer
{
    /// <summary>
    /// The attention sublayer with its residual (and, post-norm, its norm) at <paramref name="rows"/> [batch, r, hidden],
    /// rows taken from the layer input <paramref name="x"/> [batch, seq, hidden] whose every position supplies keys
    /// and values. <paramref name="mask"/>: boolean [batch, 1, r or 1, seq] (true = may attend), or null for none.
    /// </summary>
    Tensor Attend(Tensor rows, Tensor x, Tensor? mask);

    /// <summary>The position-wise rest of the layer on the attention sublayer's output [.., hidden]: same shape out.</summary>
    Tensor FeedForward(Tensor attended);

    /// <summary>The widest per-token activation of <see cref="FeedForward"/> (the intermediate size), to size its chunks.</summary>
    long FeedForwardWidth { get; }
}

/// <summary>A layer's whole forward pass from its halves, for its own <c>forward</c> (the stack does the same per layer).</summary>
internal static class TransformerLayers
{
    /// <summary>The layer's output at <paramref name="rows"/> of <paramref name="x"/> (all of x when rows is x).</summary>
    public static Tensor Rows(ITransformerLayer layer, Tensor rows, Tensor x, Tensor? mask)
    {
        using var attended = layer.Attend(rows, x, mask);
        return TokenChunks.Map(attended, layer.FeedForwardWidth, layer.FeedForward);
    }
}
