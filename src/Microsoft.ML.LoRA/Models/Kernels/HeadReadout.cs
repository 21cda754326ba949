using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models.Kernels;

/// <summary>
/// The one position per example that a sequence-classification head reads from the last layer: the first token
/// (BERT's [CLS], RoBERTa's &lt;s&gt;, DistilBERT) or each row's last real token (GPT-2).
/// </summary>
/// <remarks>
/// A layer's output at a position depends on every position's keys and values but only on its own query, residual
/// and feed-forward. So the last layer of a stack is run for the read rows only (<see cref="LayerStack{TLayer}"/>):
/// keys and values from all positions, everything else on one row per example. At 128 tokens that is about a sixth
/// of the layer's work. Logits and gradients are those of the whole layer; only the dropout masks drawn inside that
/// layer cover fewer elements.
/// </remarks>
internal sealed class HeadReadout : IDisposable
{
    readonly Tensor? _positions;   // int64 [batch, 1, 1]: the read position per row, or null for the first token

    HeadReadout(Tensor? positions, Tensor? mask)
    {
        _positions = positions;
        Mask = mask;
    }

    /// <summary>
    /// Boolean [batch, 1, 1, seq]: which keys each read row may attend to; null means the stack's own mask applies
    /// (the read row is an ordinary row of a bidirectional encoder).
    /// </summary>
    public Tensor? Mask { get; }

    /// <summary>The first token of every row, attending as every other row does.</summary>
    public static HeadReadout FirstToken() => new(null, null);

    /// <summary>
    /// Each row's last real token (the last position whose attention mask is 1; position 0 for a row with none),
    /// attending causally: to the real tokens up to itself, and to itself.
    /// </summary>
    public static HeadReadout LastRealToken(Tensor attentionMask)
    {
        long seq = attentionMask.shape[1];
        using var positions = PositionIds.Row(seq, attentionMask.device);
        using var real = attentionMask.ne(Scalars.Zero);
        using var realLong = real.to_type(ScalarType.Int64);
        using var weighted = positions.mul(realLong);
        using var last = weighted.argmax(1, keepdim: true);                 // [batch, 1]
        using var upToLast = positions.le(last);                            // [batch, seq]
        using var isLast = positions.eq(last);
        using var visible = real.logical_or(isLast);
        using var mask = visible.logical_and(upToLast);
        using var rowMask = mask.unsqueeze(1);
        return new HeadReadout(last.unsqueeze(-1), rowMask.unsqueeze(1));
    }

    /// <summary>The read rows of <paramref name="hidden"/> [batch, seq, hidden]: [batch, 1, hidden].</summary>
    public Tensor Rows(Tensor hidden)
    {
        if (_positions is null) return hidden.narrow(1, 0, 1);
        using var index = _positions.expand(-1, 1, hidden.shape[2]);
        return hidden.gather(1, index);
    }

    /// <summary>
    /// Where the read rows sit in <paramref name="hidden"/> [batch, seq, hidden]: int64 [batch, 1] (zeros for the first
    /// token), for layers whose attention depends on a row's position (<see cref="TransformerLayer"/>'s rowPositions).
    /// </summary>
    public Tensor RowPositions(Tensor hidden)
    {
        if (_positions is null) return torch.zeros(hidden.shape[0], 1, dtype: ScalarType.Int64, device: hidden.device);
        return _positions.view(hidden.shape[0], 1);
    }

    /// <summary>
    /// A readout over aliases of this one's tensors, for a checkpointed layer that runs again in the backward pass
    /// after the caller has disposed this one (the aliases go with the training step's dispose scope).
    /// </summary>
    public HeadReadout Alias() => new(_positions?.alias(), Mask?.alias());

    public void Dispose()
    {
        _positions?.Dispose();
        Mask?.Dispose();
    }
}
