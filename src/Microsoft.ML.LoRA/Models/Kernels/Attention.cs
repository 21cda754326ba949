using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.LoRA.Models.Kernels;

/// <summary>Multi-head scaled dot-product attention over already projected queries, keys and values.</summary>
internal static class Attention
{
    /// <summary>
    /// q: [batch, queries, hidden]; k, v: [batch, seq, hidden] (queries = seq, except for a layer run for the rows a
    /// head reads, see <see cref="HeadReadout"/>). <paramref name="keyMask"/>: boolean [batch, 1, 1 or queries, seq]
    /// (true = may attend) or null for no padding. Returns [batch, queries, hidden].
    /// </summary>
    /// <remarks>
    /// Without attention dropout this is libtorch's scaled_dot_product_attention (its fused CPU kernel never builds the
    /// [batch, heads, seq, seq] matrices). With dropout in training, SDPA falls back to its unfused path and draws the
    /// mask with the slow bernoulli_; <see cref="Explicit"/> computes the same attention with <see cref="Dropout"/>,
    /// and <see cref="RecomputedAttention"/> the same again without keeping its matrices for the backward pass where
    /// that is also faster (matrices above 32 MiB, see RecomputedAttention.Pays).
    /// </remarks>
    public static Tensor Run(Tensor q, Tensor k, Tensor v, int heads, Tensor? keyMask, double dropout, bool training, bool causal = false)
    {
        long batch = q.shape[0], queries = q.shape[1], seq = k.shape[1], hidden = q.shape[2];
        long headDim = hidden / heads;
        if (causal && queries != seq) throw new ArgumentException("causal attention needs a query for every key; pass an explicit mask for a subset of rows", nameof(causal));
        // Every intermediate view is disposed here: a view left to the dispose scope keeps its whole tensor alive
        // until the training step ends, which defeats activation checkpointing.
        using var qh = Heads(q, batch, queries, heads, headDim);
        using var kh = Heads(k, batch, seq, heads, headDim);
        using var vh = Heads(v, batch, seq, heads, headDim);
        using var context = !(training && dropout > 0) ? F.scaled_dot_product_attention(qh, kh, vh, keyMask, 0.0, causal)
            : RecomputedAttention.Handles(qh, kh, vh, dropout) && RecomputedAttention.Pays(qh, kh) ? RecomputedAttention.Apply(qh, kh, vh, keyMask, dropout, causal)
            : Explicit(qh, kh, vh, keyMask, dropout, causal);
        using var merged = context.transpose(1, 2);
        return merged.reshape(batch, queries, hidden);
    }

    /// <summary>
    /// Whether <see cref="ReadRows"/> should replace the key and value projections: inference (eval mode, no
    /// autograd) for a subset of rows few enough that rows × heads is at most a quarter of the hidden size (the
    /// folded products grow with rows × heads × hidden, the projections they replace with seq × hidden²).
    /// </summary>
    public static bool FoldsKeysAndValues(Tensor rows, Tensor x, int heads, bool training) =>
        !training && !torch.is_grad_enabled() && rows.shape[1] < x.shape[1] && rows.shape[1] * heads * 4 <= x.shape[2];

    /// <summary>
    /// <see cref="ReadRows"/> over the eval weights of the <paramref name="key"/> and <paramref name="value"/>
    /// projections when <see cref="FoldsKeysAndValues"/> holds and both have one (see LoraLinear.EvalWeight);
    /// otherwise null, and the caller projects keys and values itself.
    /// </summary>
    public static Tensor? TryReadRows(Tensor q, Tensor rows, Tensor x, LoraLinear key, LoraLinear value, int heads, Tensor? keyMask, bool training)
    {
        if (!FoldsKeysAndValues(rows, x, heads, training)) return null;
        using var keyWeight = key.EvalWeight(x);
        using var valueWeight = value.EvalWeight(x);
        return keyWeight is null || valueWeight is null ? null : ReadRows(q, x, keyWeight, valueWeight, value.bias, heads, keyMask);
    }

    /// <summary>
    /// Multi-head attention of a few query rows q [batch, r, hidden] (already projected) to every position of
    /// <paramref name="x"/> [batch, seq, hidden], with the key and value projections folded into the queries and
    /// the probabilities instead of applied to every position: head h's score q·(x·Wkᵀ + bk) equals x·(q·Wk) plus a
    /// constant of the row, which softmax ignores, and its context P·(x·Wvᵀ + bv) equals (P·x)·Wvᵀ + bv because each
    /// row of P sums to 1. For a head that reads one row per example this skips the last layer's two largest products
    /// over all tokens. <paramref name="keyWeight"/>, <paramref name="valueWeight"/>: [hidden, hidden] as [out, in];
    /// <paramref name="keyMask"/> as for <see cref="Run"/>. Returns [batch, r, hidden]; no dropout (inference only).
    /// </summary>
    public static Tensor ReadRows(Tensor q, Tensor x, Tensor keyWeight, Tensor valueWeight, Tensor? valueBias, int heads, Tensor? keyMask)
    {
        long batch = q.shape[0], rows = q.shape[1], hidden = q.shape[2], headDim = hidden / heads;
        // Per head: u = q·Wk / √d, [heads, batch·r, hidden].
        using Scalar queryScale = 1.0 / Math.Sqrt(headDim);
        using var scaledQ = q.mul(queryScale);
        using var qSplit = scaledQ.reshape(batch * rows, heads, headDim);
        using var qHeads = qSplit.transpose(0, 1);                                       // [heads, batch·r, d]
        using var keyHeads = keyWeight.view(heads, headDim, hidden);
        using var u = qHeads.bmm(keyHeads);                                              // [heads, batch·r, hidden]
        using var uSplit = u.view(heads, batch, rows, hidden);
        using var uByRow = uSplit.transpose(0, 1);
        using var uRows = uByRow.reshape(batch, heads * rows, hidden);
        // Scores x·u over every position, masked, softmax: [batch, heads·r, seq].
        using var xT = x.transpose(1, 2);
        using var scores = uRows.bmm(xT);
        long seq = x.shape[1];
        using var scoreHeads = scores.view(batch, heads, rows, seq);
        if (keyMask is not null)
        {
            using var hiddenKeys = keyMask.logical_not();
            using Scalar lowest = float.MinValue;
            scoreHeads.masked_fill_(hiddenKeys, lowest);
        }
        using var probs = scores.softmax(-1);
        // Context (P·x)·Wvᵀ + bv per head: [heads, batch·r, d].
        using var mixed = probs.bmm(x);                                                  // [batch, heads·r, hidden]
        using var mixedSplit = mixed.view(batch, heads, rows, hidden);
        using var mixedByHead = mixedSplit.transpose(0, 1);
        using var mixedHeads = mixedByHead.reshape(heads, batch * rows, hidden);
        using var valueHeads = valueWeight.view(heads, headDim, hidden);
        using var valueHeadsT = valueHeads.transpose(1, 2);                              // [heads, hidden, d]
        using var context = mixedHeads.bmm(valueHeadsT);
        if (valueBias is not null)
        {
            using var biasHeads = valueBias.view(heads, 1, headDim);
            context.add_(biasHeads, Scalars.One);
        }
        using var contextSplit = context.view(heads, batch, rows, headDim);
        using var contextByRow = contextSplit.permute(1, 2, 0, 3);                       // [batch, r, heads, d]
        return contextByRow.reshape(batch, rows, hidden);
    }

    /// <summary>[batch, seq, hidden] as [batch, heads, seq, headDim].</summary>
    static Tensor Heads(Tensor x, long batch, long seq, int heads, long headDim)
    {
        using var split = x.view(batch, seq, heads, headDim);
        return split.transpose(1, 2);
    }

    /// <summary>
    /// softmax(q·kᵀ/√d, masked) with dropout, times v, over [batch, heads, seq, headDim] tensors. Masked scores are set
    /// to the lowest finite float (as Hugging Face does), so a row with no visible key is uniform rather than NaN.
    /// </summary>
    internal static Tensor Explicit(Tensor qh, Tensor kh, Tensor vh, Tensor? keyMask, double dropout, bool causal)
    {
        long headDim = qh.shape[3];
        // The scalings go on the [batch, heads, seq, headDim] operands rather than the [batch, heads, seq, seq]
        // scores and probabilities: 1/√d on q, and dropout's 1/(1-p) on v unless the fused dropout applies it in its
        // own pass. The forward and backward passes then make no elementwise pass over the seq x seq matrices for them.
        using Scalar queryScale = 1.0 / Math.Sqrt(headDim);
        using var scaledQ = qh.mul(queryScale);
        using var keyT = kh.transpose(-1, -2);
        using var scores = scaledQ.matmul(keyT);
        using Scalar lowest = float.MinValue;
        FillHidden(scores, keyMask, causal, lowest);
        using var probs = scores.softmax(-1);
        if (dropout <= 0) return probs.matmul(vh);
        if (dropout >= 1) return torch.zeros_like(vh);
        if (FusedDropout.Handles(probs))
        {
            // The fused pass scales the kept probabilities at no extra cost, so v stays as it is.
            using var droppedAndScaled = Dropout.Apply(probs, dropout, training: true);
            return droppedAndScaled.matmul(vh);
        }
        using var dropped = Dropout.Unscaled(probs, dropout);
        using Scalar inverted = 1.0 / (1.0 - dropout);
        using var scaledV = vh.mul(inverted);
        return dropped.matmul(scaledV);
    }

    /// <summary>
    /// Sets the elements of <paramref name="scores"/> [.., queries, seq] that a query may not attend to, those where
    /// <paramref name="keyMask"/> is false and, when <paramref name="causal"/>, those after the query (queries = seq),
    /// to <paramref name="value"/>, in place: float.MinValue before the softmax, 0 for their gradients.
    /// </summary>
    internal static void FillHidden(Tensor scores, Tensor? keyMask, bool causal, Scalar value)
    {
        if (keyMask is not null)
        {
            using var hidden = keyMask.logical_not();
            scores.masked_fill_(hidden, value);
        }
        if (causal)
        {
            long seq = scores.shape[^1];
            using var future = torch.ones(seq, seq, ScalarType.Bool, scores.device).triu_(1);
            scores.masked_fill_(future, value);
        }
    }

    /// <summary>A [batch, 1, 1, seq] boolean key mask from a 0/1 attention mask, or null when nothing is padded.</summary>
    public static Tensor? KeyMask(Tensor attentionMask)
    {
        using var isReal = attentionMask.ne(Scalars.Zero);
        if (isReal.all().item<bool>()) return null;
        return isReal.unsqueeze(1).unsqueeze(1);
    }
}
