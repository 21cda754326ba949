using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.LoRA.Models;

/// <summary>Multi-head scaled dot-product attention over already projected queries, keys and values.</summary>
internal static class Attention
{
    /// <summary>
    /// q, k, v: [batch, seq, hidden]. <paramref name="keyMask"/>: boolean [batch, 1, 1 or seq, seq] (true = may attend)
    /// or null for no padding. Returns [batch, seq, hidden].
    /// </summary>
    public static Tensor Run(Tensor q, Tensor k, Tensor v, int heads, Tensor? keyMask, double dropout, bool training, bool causal = false)
    {
        long batch = q.shape[0], seq = q.shape[1], hidden = q.shape[2];
        long headDim = hidden / heads;
        using var qh = q.view(batch, seq, heads, headDim).transpose(1, 2);
        using var kh = k.view(batch, seq, heads, headDim).transpose(1, 2);
        using var vh = v.view(batch, seq, heads, headDim).transpose(1, 2);
        using var context = F.scaled_dot_product_attention(qh, kh, vh, keyMask, training ? dropout : 0.0, causal);
        return context.transpose(1, 2).reshape(batch, seq, hidden);
    }

    /// <summary>A [batch, 1, 1, seq] boolean key mask from a 0/1 attention mask, or null when nothing is padded.</summary>
    public static Tensor? KeyMask(Tensor attentionMask)
    {
        using var isReal = attentionMask.ne(Scalars.Zero);
        if (isReal.all().item<bool>()) return null;
        return isReal.unsqueeze(1).unsqueeze(1);
    }
}
