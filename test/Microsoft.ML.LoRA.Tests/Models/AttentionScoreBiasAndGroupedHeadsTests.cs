using Microsoft.ML.LoRA.Models.Kernels;
using Microsoft.ML.LoRA.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tests.Models;

/// <summary>
/// The attention kernels take an additive score term (relative positions, ALiBi) and grouped key/value heads (GQA),
/// on every path: libtorch's fused attention, the explicit one with dropout, the one that recomputes its
/// probabilities, and the folded read of a few rows. Each is compared with softmax(q·kᵀ/√d + bias, masked)·v written
/// out here, key/value heads repeated per query head as Hugging Face's repeat_kv does.
/// </summary>
[Collection(LiveHeapCollection.Name)]
public class AttentionScoreBiasAndGroupedHeadsTests
{
    const int Batch = 2, Heads = 4, KvHeads = 2, Seq = 6, HeadDim = 3;

    static Generator Gen(ulong seed) => new Generator(seed);

    /// <summary>[batch, seq, heads·headDim] inputs, a bias [batch, heads, seq, seq] and a key mask that hides the second row's last two keys.</summary>
    static (Tensor q, Tensor k, Tensor v, Tensor bias, Tensor mask) Inputs(int kvHeads)
    {
        var g = Gen(41);
        var q = torch.randn(new long[] { Batch, Seq, Heads * HeadDim }, generator: g);
        var k = torch.randn(new long[] { Batch, Seq, kvHeads * HeadDim }, generator: g);
        var v = torch.randn(new long[] { Batch, Seq, kvHeads * HeadDim }, generator: g);
        var bias = torch.randn(new long[] { Batch, Heads, Seq, Seq }, generator: g);
        var real = torch.ones(Batch, Seq, dtype: ScalarType.Bool);
        real[1, Seq - 2] = false;
        real[1, Seq - 1] = false;
        return (q, k, v, bias, real.unsqueeze(1).unsqueeze(1));
    }

    /// <summary>The reference: per query head h, key/value head h / (heads / kvHeads).</summary>
    static Tensor Reference(Tensor q, Tensor k, Tensor v, Tensor? bias, Tensor? mask, int kvHeads)
    {
        int group = Heads / kvHeads;
        var qh = q.view(Batch, -1, Heads, HeadDim).transpose(1, 2);
        var kh = k.view(Batch, Seq, kvHeads, HeadDim).transpose(1, 2).repeat_interleave(group, 1);
        var vh = v.view(Batch, Seq, kvHeads, HeadDim).transpose(1, 2).repeat_interleave(group, 1);
        var scores = qh.matmul(kh.transpose(-1, -2)).div(Math.Sqrt(HeadDim));
        if (bias is not null) scores = scores.add(bias);
        if (mask is not null) scores = scores.masked_fill(mask.logical_not(), float.MinValue);
        var context = scores.softmax(-1).matmul(vh);
        return context.transpose(1, 2).reshape(Batch, -1, Heads * HeadDim);
    }

    static void ShouldAgree(Tensor actual, Tensor expected, string what) =>
        actual.allclose(expected, rtol: 1e-5, atol: 1e-5).Should().BeTrue($"{what}: max difference {(actual - expected).abs().max().item<float>()}");

    [Theory]
    [InlineData(Heads)]
    [InlineData(KvHeads)]
    public void Fused_attention_adds_the_score_bias_and_shares_key_value_heads(int kvHeads)
    {
        using var scope = torch.NewDisposeScope();
        var (q, k, v, bias, mask) = Inputs(kvHeads);
        using var _ = torch.no_grad();

        var withBias = Attention.Run(q, k, v, Heads, mask, dropout: 0, training: false, scoreBias: bias, keyValueHeads: kvHeads);
        var without = Attention.Run(q, k, v, Heads, mask, dropout: 0, training: false, keyValueHeads: kvHeads);

        ShouldAgree(withBias, Reference(q, k, v, bias, mask, kvHeads), "with a bias");
        ShouldAgree(without, Reference(q, k, v, null, mask, kvHeads), "without one");
        withBias.allclose(without, rtol: 1e-3, atol: 1e-3).Should().BeFalse("the bias must change the result");
    }

    [Fact]
    public void A_causal_score_bias_hides_future_keys_as_plain_causal_attention_does()
    {
        using var scope = torch.NewDisposeScope();
        var (q, k, v, _, _) = Inputs(Heads);
        using var _ = torch.no_grad();
        var zero = torch.zeros(1, 1, Seq, Seq);

        var biased = Attention.Run(q, k, v, Heads, keyMask: null, dropout: 0, training: false, causal: true, scoreBias: zero);
        var plain = Attention.Run(q, k, v, Heads, keyMask: null, dropout: 0, training: false, causal: true);

        ShouldAgree(biased, plain, "a zero bias on causal attention");
    }

    [Fact]
    public void The_explicit_path_adds_the_bias_and_passes_it_a_gradient()
    {
        using var scope = torch.NewDisposeScope();
        var (q, k, v, bias0, mask) = Inputs(Heads);
        var bias = bias0.detach().requires_grad_(true);
        var qh = q.view(Batch, Seq, Heads, HeadDim).transpose(1, 2);
        var kh = k.view(Batch, Seq, Heads, HeadDim).transpose(1, 2);
        var vh = v.view(Batch, Seq, Heads, HeadDim).transpose(1, 2);

        var context = Attention.Explicit(qh, kh, vh, mask, dropout: 0, causal: false, scoreBias: bias);
        context.sum().backward();

        ShouldAgree(context.transpose(1, 2).reshape(Batch, Seq, Heads * HeadDim), Reference(q, k, v, bias0, mask, Heads), "explicit");
        bias.grad.Should().NotBeNull();
        using (var hidden = bias.grad!.masked_select(mask.logical_not().expand(Batch, Heads, Seq, Seq)))
            hidden.abs().max().item<float>().Should().Be(0, "a hidden key's score gets no gradient");
        bias.grad!.abs().sum().item<float>().Should().BeGreaterThan(0);
    }

    [Fact]
    public void Recomputed_attention_with_a_fixed_bias_matches_the_explicit_attention_with_the_same_dropout()
    {
        using var scope = torch.NewDisposeScope();
        var (q, k, v, bias, mask) = Inputs(Heads);
        Tensor Heads4(Tensor t) => t.view(Batch, Seq, Heads, HeadDim).transpose(1, 2).detach().requires_grad_(true);

        (Tensor output, Tensor gradQ) Once(bool recomputed)
        {
            var (qh, kh, vh) = (Heads4(q), Heads4(k), Heads4(v));
            Tensor output;
            lock (TorchRandomLock.Sync)
            {
                torch.manual_seed(5);
                if (recomputed) RecomputedAttention.Handles(qh, kh, vh, 0.3, bias).Should().BeTrue();
                output = recomputed ? RecomputedAttention.Apply(qh, kh, vh, mask, 0.3, causal: false, scoreBias: bias)
                    : Attention.Explicit(qh, kh, vh, mask, 0.3, causal: false, scoreBias: bias);
            }
            output.mul(torch.linspace(-1, 2, output.numel()).view(output.shape)).sum().backward();
            return (output.detach(), qh.grad!.clone());
        }

        var (explicitOut, explicitGrad) = Once(recomputed: false);
        var (recomputedOut, recomputedGrad) = Once(recomputed: true);

        ShouldAgree(recomputedOut, explicitOut, "output");
        ShouldAgree(recomputedGrad, explicitGrad, "gradient of q");
        RecomputedAttention.Handles(q, k, v, 0.3, bias.detach().requires_grad_(true)).Should().BeFalse("a learned bias takes the explicit path, which differentiates it");
    }

    [Theory]
    [InlineData(Heads)]
    [InlineData(KvHeads)]
    public void The_folded_read_of_a_few_rows_takes_the_bias_and_grouped_heads(int kvHeads)
    {
        using var scope = torch.NewDisposeScope();
        var g = Gen(9);
        const int hidden = 8;
        var x = torch.randn(new long[] { Batch, Seq, hidden }, generator: g);
        var keyWeight = torch.randn(new long[] { kvHeads * HeadDim, hidden }, generator: g);
        var valueWeight = torch.randn(new long[] { kvHeads * HeadDim, hidden }, generator: g);
        var valueBias = torch.randn(new long[] { kvHeads * HeadDim }, generator: g);
        var q = torch.randn(new long[] { Batch, 1, Heads * HeadDim }, generator: g);
        var bias = torch.randn(new long[] { Batch, Heads, 1, Seq }, generator: g);
        using var _ = torch.no_grad();

        var folded = Attention.ReadRows(q, x, keyWeight, valueWeight, valueBias, Heads, keyMask: null, scoreBias: bias, keyValueHeads: kvHeads);

        var k = x.matmul(keyWeight.t());
        var v = x.matmul(valueWeight.t()).add(valueBias);
        var expected = Attention.Run(q, k, v, Heads, keyMask: null, dropout: 0, training: false, scoreBias: bias, keyValueHeads: kvHeads);
        ShouldAgree(folded, expected, "folded read");
    }
}
