using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models.Kernels;

/// <summary>The masks of causal (decoder) attention: padding, and a sliding window over the most recent keys.</summary>
internal static class CausalMask
{
    /// <summary>
    /// The mask every layer of a causal decoder takes for <paramref name="attentionMask"/> [batch, seq] (1 = real).
    /// Null when every row is right-padded: real tokens never see the padding after them, so plain causal attention
    /// gives the same result for them (and the rows a head reads are real). Otherwise causal AND (real key OR the
    /// token itself), boolean [batch, 1, seq, seq]; the token itself keeps a padding row from having no key at all.
    /// </summary>
    public static Tensor? ForPadding(Tensor attentionMask)
    {
        using var real = attentionMask.ne(Scalars.Zero);
        long seq = real.shape[1];
        if (seq <= 1) return null;
        using var later = real.narrow(1, 1, seq - 1);
        using var earlier = real.narrow(1, 0, seq - 1);
        using var reappears = later.logical_and(earlier.logical_not());
        if (!reappears.any().item<bool>()) return null;
        using var causal = torch.ones(seq, seq, dtype: ScalarType.Bool, device: real.device).tril();
        using var self = torch.eye(seq, dtype: ScalarType.Bool, device: real.device);
        using var keys = real.unsqueeze(1).unsqueeze(1);
        using var visible = keys.logical_or(self);
        return visible.logical_and(causal);
    }

    /// <summary>
    /// Sliding-window attention: a query at position i may attend to the key at position j only when j &lt;= i and
    /// i - j &lt; <paramref name="window"/>. Returns <paramref name="mask"/> so restricted, as a new boolean
    /// [batch or 1, 1, queries, keys] tensor, or null when the window hides no key that the mask shows (no query is
    /// <paramref name="window"/> or more positions past the first key), in which case the mask applies as it is.
    /// </summary>
    /// <param name="mask">The layer's mask, which already holds causality: boolean [batch, 1, 1 or queries, keys]; null for plain causal attention.</param>
    /// <param name="queryPositions">Each query's position, int64 [batch or 1, queries]; null when the queries are the keys' own positions 0 .. keys-1.</param>
    /// <param name="keys">The number of keys (their positions are 0 .. keys-1).</param>
    /// <param name="window">The window, at least 1 (a query always sees itself).</param>
    /// <param name="device">Where the mask is built.</param>
    public static Tensor? Windowed(Tensor? mask, Tensor? queryPositions, long keys, int window, Device device)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        long lastQuery = queryPositions is null ? keys - 1 : queryPositions.max().item<long>();
        if (lastQuery < window) return null;
        using var keyPositions = PositionIds.Row(keys, device);                                // [1, keys]
        using var ownPositions = queryPositions is null ? PositionIds.Row(keys, device) : null;
        var positions = queryPositions ?? ownPositions!;
        using var query = positions.unsqueeze(-1);                                             // [b, queries, 1]
        using var distance = query.sub(keyPositions);                                          // i - j, [b, queries, keys]
        using Scalar width = window;
        using var near = distance.lt(width);
        using var notAhead = distance.ge(Scalars.Zero);
        using var windowed = near.logical_and(notAhead);
        using var perHead = windowed.unsqueeze(1);                                             // [b, 1, queries, keys]
        return mask is null ? perHead.alias() : mask.logical_and(perHead);
    }
}
