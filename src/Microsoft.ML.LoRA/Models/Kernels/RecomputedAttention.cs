using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models.Kernels;

/// <summary>
/// Attention with dropout for training that keeps no [batch, heads, queries, seq] matrix between the forward and the
/// backward pass: autograd holds q/√d, k, v, the output, the key mask and the dropout seed, and the backward pass
/// computes the scores, the probabilities and the dropout mask again (one q·kᵀ product, a softmax and a hash pass)
/// before the gradients. Both passes work through the batch in chunks whose matrices stay under
/// <see cref="TokenChunks.ChunkBytes"/>.
/// </summary>
/// <remarks>
/// <see cref="Attention.Explicit"/> keeps two such matrices per layer for the backward pass (the softmax output, and
/// the dropped probabilities for the product with v): 2 × 24 MiB per layer on all-MiniLM-L6-v2 at batch 32 × 128
/// tokens, growing with the square of the sequence length. The scores, softmax and masks recomputed here come from
/// the same inputs and seed as the forward pass's, so the gradients are those of the same formula (tests compare
/// them with Explicit's). Float32 CPU tensors with 0 &lt; dropout &lt; 1 (<see cref="Handles"/>); Attention.Run takes
/// this path where it also pays in time (<see cref="Pays"/>).
/// </remarks>
internal static class RecomputedAttention
{
    /// <summary>
    /// Whether this path applies: autograd records, some input needs a gradient, float32 CPU tensors that
    /// <see cref="FusedDropout"/> handles, and no score bias that needs a gradient of its own (a learned term such as
    /// DeBERTa's relative-position scores takes <see cref="Attention.Explicit"/>, which autograd differentiates).
    /// </summary>
    public static bool Handles(Tensor qh, Tensor kh, Tensor vh, double dropout, Tensor? scoreBias = null) =>
        dropout > 0 && dropout < 1 && torch.is_grad_enabled() && !(scoreBias?.requires_grad ?? false)
        && (qh.requires_grad || kh.requires_grad || vh.requires_grad)
        && FusedDropout.Handles(qh) && FusedDropout.Handles(kh) && FusedDropout.Handles(vh)
        && qh.shape[2] * kh.shape[2] * qh.shape[0] * qh.shape[1] <= int.MaxValue;

    /// <summary>
    /// Bytes of one layer's [batch, heads, queries, seq] float32 matrix from which this path is also the faster one:
    /// glibc's largest mmap threshold (NativeRuntimeTuning sets it). Above it each matrix the explicit attention
    /// allocates is a fresh mapping whose pages are faulted in and zeroed, while this path works in chunks the heap
    /// reuses. Below it the heap already reuses the explicit attention's blocks, and recomputing costs more time than
    /// the memory it saves is worth: all-MiniLM-L6-v2's layers at 32 x 128 tokens, 24 MiB each, stay on the explicit
    /// path (measured: docs/benchmarks.md, "Why the kernels are built as they are").
    /// </summary>
    public const long FasterFromBytes = 32L << 20;

    /// <summary>Whether <paramref name="qh"/>·<paramref name="kh"/>ᵀ is large enough for this path to pay (<see cref="FasterFromBytes"/>).</summary>
    public static bool Pays(Tensor qh, Tensor kh) =>
        qh.shape[0] * qh.shape[1] * qh.shape[2] * kh.shape[2] * sizeof(float) > FasterFromBytes;

    /// <summary>
    /// softmax(q·kᵀ/√d, masked), dropped with probability <paramref name="dropout"/> (kept ones scaled by 1/(1-p)),
    /// times v, as <see cref="Attention.Explicit"/> computes it, over [batch, heads, queries or seq, headDim] tensors;
    /// <paramref name="keyMask"/> boolean (true = may attend), broadcast to [batch, heads, queries, seq], or null;
    /// <paramref name="scoreBias"/> a float term added to the scores before the mask (broadcast the same way; it gets
    /// no gradient, see <see cref="Handles"/>), or null.
    /// </summary>
    public static Tensor Apply(Tensor qh, Tensor kh, Tensor vh, Tensor? keyMask, double dropout, bool causal, Tensor? scoreBias = null)
    {
        var draw = new FusedDropout.Draw(DropoutMask.NextSeed(), DropoutMask.Threshold(dropout), (float)(1.0 / (1.0 - dropout)));
        var call = new Call(draw, keyMask?.alias(), scoreBias?.alias(), causal, qh.requires_grad, kh.requires_grad, vh.requires_grad);
        var context = Node.apply(qh, kh, vh, call);
        FunctionHandles.ReleaseForwardOutput();
        return context;
    }

    /// <summary>
    /// What the backward pass needs besides q, k and v. <see cref="KeyMask"/> and <see cref="ScoreBias"/> are aliases of
    /// the caller's tensors (which the model frees when its forward pass returns), freed with the training step's
    /// dispose scope.
    /// </summary>
    sealed record Call(FusedDropout.Draw Draw, Tensor? KeyMask, Tensor? ScoreBias, bool Causal, bool QueryNeedsGrad, bool KeyNeedsGrad, bool ValueNeedsGrad);

    /// <summary>
    /// The probabilities: softmax of q·kᵀ/√d (<paramref name="scaledQ"/> = q/√d) with hidden keys (mask false, or in
    /// the future when causal) at the lowest finite float, so a row without a visible key is uniform, as in
    /// <see cref="Attention.Explicit"/>.
    /// </summary>
    static Tensor Probabilities(Tensor scaledQ, Tensor kh, Tensor? keyMask, Tensor? scoreBias, bool causal)
    {
        using var keyT = kh.transpose(-1, -2);
        using var scores = scaledQ.matmul(keyT);
        if (scoreBias is not null) scores.add_(scoreBias);
        using Scalar lowest = float.MinValue;
        Attention.FillHidden(scores, keyMask, causal, lowest);
        return scores.softmax(-1);
    }

    /// <summary>
    /// The batch's chunks: the [examples, heads, queries, seq] matrices of one chunk stay under
    /// <see cref="TokenChunks.ChunkBytes"/>, so that glibc reuses their blocks rather than mapping and zeroing fresh
    /// pages for each (see <see cref="TokenChunks"/>); equal chunks. The whole batch when a chunk's element count would
    /// be odd (a chunk's share of the dropout mask must start on an even element).
    /// </summary>
    static IEnumerable<Chunk> Chunks(Tensor qh, Tensor kh)
    {
        long batch = qh.shape[0], perExample = qh.shape[1] * qh.shape[2] * kh.shape[2];
        long most = Math.Max(1, TokenChunks.ChunkBytes / (perExample * sizeof(float)));
        long step = batch;
        if (batch > most && perExample % 2 == 0)
        {
            long chunks = (batch + most - 1) / most;
            step = (batch + chunks - 1) / chunks;
        }
        for (long first = 0; first < batch; first += step)
            yield return new Chunk(batch, first, Math.Min(step, batch - first), first * perExample);
    }

    /// <summary>Examples [First, First + Count) of a batch, and where their share of the whole matrix's dropout draw starts.</summary>
    readonly record struct Chunk(long Batch, long First, long Count, long DrawOffset)
    {
        /// <summary>This chunk's examples of a q, k, v, output or mask tensor (a mask broadcast over examples as it is).</summary>
        public Tensor Of(Tensor t) => t.shape[0] != Batch ? t.alias() : t.narrow(0, First, Count);
    }

    /// <summary>The chunks' results as one tensor along the batch (a new handle; the parts stay the caller's).</summary>
    static Tensor Join(List<Tensor> parts) => parts.Count == 1 ? parts[0].alias() : torch.cat(parts, 0);

    /// <summary>The autograd node: vars are q, k, v (each [batch, heads, rows, headDim]) and the <see cref="Call"/>.</summary>
    sealed class Node : torch.autograd.SingleTensorFunction<Node>
    {
        public override string Name => nameof(RecomputedAttention);

        public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
        {
            var call = (Call)vars[3];
            ctx.save_data("call", call);
            ctx.set_materialize_grads(false);
            using var _ = torch.no_grad();
            // q/√d, k and v in the [batch, heads, rows, headDim] layout the products want, copied once here (the heads
            // are views across the projections' [batch, rows, hidden]) and saved instead of those views.
            var query = (Tensor)vars[0];
            using Scalar queryScale = 1.0 / Math.Sqrt(query.shape[3]);
            var scaledQ = FunctionHandles.KeepUntilApplyReturns(query.is_contiguous() ? query.mul(queryScale) : query.contiguous().mul_(queryScale));
            var kh = FunctionHandles.KeepUntilApplyReturns(((Tensor)vars[1]).contiguous());
            var vh = FunctionHandles.KeepUntilApplyReturns(((Tensor)vars[2]).contiguous());
            var parts = new List<Tensor>();
            try
            {
                foreach (var chunk in Chunks(scaledQ, kh))
                {
                    using var q = chunk.Of(scaledQ);
                    using var k = chunk.Of(kh);
                    using var v = chunk.Of(vh);
                    using var mask = call.KeyMask is null ? null : chunk.Of(call.KeyMask);
                    using var bias = call.ScoreBias is null ? null : chunk.Of(call.ScoreBias);
                    using var probs = Probabilities(q, k, mask, bias, call.Causal);
                    call.Draw.ApplyInPlace(probs, chunk.DrawOffset);
                    parts.Add(probs.matmul(v));
                }
                var context = Join(parts);
                // The output too ([.., queries, headDim], small): the softmax gradient needs Σ_j P_ij·dP_ij per row,
                // which equals dO_i·O_i, a sum over headDim instead of a pass over the probabilities.
                var contextAlias = FunctionHandles.KeepUntilApplyReturns(context.detach());
                ctx.save_for_backward(new List<Tensor> { scaledQ, kh, vh, contextAlias });
                return FunctionHandles.KeepForwardOutput(ctx, context);
            }
            finally
            {
                foreach (var part in parts) part.Dispose();
            }
        }

        [ThreadStatic] static List<Tensor>? _returned;

        public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
        {
            FunctionHandles.Release(ref _returned);
            var saved = ctx.get_saved_variables();
            var call = (Call)ctx.get_data("call");
            var grads = new[] { new List<Tensor>(), new List<Tensor>(), new List<Tensor>() };
            try
            {
                Tensor scaledQ = saved[0], kh = saved[1], vh = saved[2], context = saved[3];
                using var _ = torch.no_grad();
                using var gradContiguous = gradOutput.is_contiguous() ? null : gradOutput.contiguous();
                var dOutput = gradContiguous ?? gradOutput;
                foreach (var chunk in Chunks(scaledQ, kh))
                {
                    using var q = chunk.Of(scaledQ);
                    using var k = chunk.Of(kh);
                    using var v = chunk.Of(vh);
                    using var o = chunk.Of(context);
                    using var dO = chunk.Of(dOutput);
                    using var mask = call.KeyMask is null ? null : chunk.Of(call.KeyMask);
                    using var bias = call.ScoreBias is null ? null : chunk.Of(call.ScoreBias);
                    var (dq, dk, dv) = BackwardChunk(call, q, k, v, o, dO, mask, bias, chunk.DrawOffset);
                    if (dq is not null) grads[0].Add(dq);
                    if (dk is not null) grads[1].Add(dk);
                    if (dv is not null) grads[2].Add(dv);
                }
                _returned = new List<Tensor>();
                var result = new List<Tensor>();
                foreach (var parts in grads)
                {
                    var grad = parts.Count == 0 ? null : Join(parts);
                    if (grad is not null) _returned.Add(grad);
                    result.Add(grad!);
                }
                result.Add(null!);
                return result;
            }
            finally
            {
                foreach (var parts in grads) foreach (var t in parts) t.Dispose();
                foreach (var t in saved) t.Dispose();
                gradOutput.Dispose();
            }
        }

        /// <summary>
        /// The gradients of one chunk's q, k and v (null where not needed) from its q/√d, k, v, output o, output
        /// gradient dO and the chunk's first element in the dropout draw.
        /// </summary>
        static (Tensor? dq, Tensor? dk, Tensor? dv) BackwardChunk(Call call, Tensor scaledQ, Tensor k, Tensor v, Tensor o, Tensor dO, Tensor? mask, Tensor? bias, long drawOffset)
        {
            using var probs = Probabilities(scaledQ, k, mask, bias, call.Causal);
            Tensor? gradQ = null, gradK = null;
            if (call.QueryNeedsGrad || call.KeyNeedsGrad)
            {
                // dP = dropout's mask and scale on dO·vᵀ (the same draw); softmax: dS = P ⊙ (dP − Σ_row P ⊙ dP), where
                // Σ_j P_ij·dP_ij = Σ_j dropped(P)_ij·(dO_i·v_j) = dO_i·O_i.
                using var valueT = v.transpose(-1, -2);
                using var gradScores = dO.matmul(valueT);
                call.Draw.ApplyInPlace(gradScores, drawOffset);
                using (var weighted = dO.mul(o))
                using (var rowSums = weighted.sum(-1, keepdim: true))
                    gradScores.sub_(rowSums).mul_(probs);
                // masked_fill's gradient: nothing flows to a hidden score (only a row with no visible key has any).
                Attention.FillHidden(gradScores, mask, call.Causal, Scalars.Zero);
                // scores = (q/√d)·kᵀ: dq = dS·k/√d, dk = dSᵀ·(q/√d).
                if (call.QueryNeedsGrad)
                {
                    using Scalar queryScale = 1.0 / Math.Sqrt(scaledQ.shape[3]);
                    gradQ = gradScores.matmul(k).mul_(queryScale);
                }
                if (call.KeyNeedsGrad)
                {
                    using var gradScoresT = gradScores.transpose(-1, -2);
                    gradK = gradScoresT.matmul(scaledQ);
                }
            }
            // dV = dropped(P)ᵀ·dO, the probabilities dropped in place now that the softmax gradient is done with them.
            Tensor? gradV = null;
            if (call.ValueNeedsGrad)
            {
                call.Draw.ApplyInPlace(probs, drawOffset);
                using var droppedT = probs.transpose(-1, -2);
                gradV = droppedT.matmul(dO);
            }
            return (gradQ, gradK, gradV);
        }
    }
}
