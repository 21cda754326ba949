using Microsoft.ML.LoRA.Checkpoints;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// How GPT-2 scales its attention scores (Hugging Face's GPT2Attention._attn): by 1/√head_dim unless
/// <c>scale_attn_weights</c> is false, and by a further 1/(layer index + 1) when <c>scale_attn_by_inverse_layer_idx</c>
/// is true. The attention kernels divide by √head_dim themselves, so what differs from that is applied to the queries
/// (<see cref="QueryFactor"/>): q·k scaled by f equals (f·q)·k. <c>reorder_and_upcast_attn</c> only changes the
/// precision of half-precision scores, which this library computes in fp32.
/// </summary>
internal static class Gpt2AttentionScale
{
    /// <summary>The factor layer <paramref name="layerIndex"/>'s queries are multiplied by (1 for GPT-2's defaults).</summary>
    public static double QueryFactor(TransformerConfig config, int layerIndex)
    {
        var r = new ConfigJson(config.Raw, config.Source);
        double factor = r.BoolOrNull("scale_attn_weights") ?? true ? 1.0 : Math.Sqrt(config.HeadDim);
        if (r.BoolOrNull("scale_attn_by_inverse_layer_idx") ?? false) factor /= layerIndex + 1;
        return factor;
    }
}
