using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Models.Kernels;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tests.Models;

/// <summary>
/// Attention with dropout that recomputes its probabilities in the backward pass gives the output and gradients of
/// the attention that keeps them (the same dropout draw), and keeps no [batch, heads, queries, seq] matrix.
/// </summary>
[Collection(LiveHeapCollection.Name)]
public class RecomputedAttentionTests
{
    const double Dropout = 0.3;

    sealed record Result(Tensor Output, Tensor? GradQ, Tensor? GradK, Tensor? GradV) : IDisposable
    {
        public void Dispose() { Output.Dispose(); GradQ?.Dispose(); GradK?.Dispose(); GradV?.Dispose(); }
    }

    /// <summary>One forward and backward pass with the dropout seed drawn after manual_seed(<paramref name="seed"/>).</summary>
    static Result Run(bool recomputed, Tensor q0, Tensor k0, Tensor v0, Tensor? keyMask, bool causal, bool keyNeedsGrad = true, int seed = 17)
    {
        using var q = q0.detach().requires_grad_(true);
        using var k = k0.detach().requires_grad_(keyNeedsGrad);
        using var v = v0.detach().requires_grad_(true);
        using var inputsBefore = torch.cat(new[] { q0, k0, v0 }, 0);
        Tensor output;
        lock (TorchRandomLock.Sync)
        {
            torch.manual_seed(seed);
            if (recomputed) RecomputedAttention.Handles(q, k, v, Dropout).Should().BeTrue();
            output = recomputed
                ? RecomputedAttention.Apply(q, k, v, keyMask, Dropout, causal)
                : Attention.Explicit(q, k, v, keyMask, Dropout, causal);
        }
        // A weighting of the output so that every element's gradient differs.
        using var weights = torch.linspace(-1, 2, output.numel()).view(output.shape);
        using var loss = output.mul(weights).sum();
        loss.backward();
        using (var inputsAfter = torch.cat(new[] { q0, k0, v0 }, 0))
            inputsAfter.allclose(inputsBefore, rtol: 0, atol: 0).Should().BeTrue("the attention must leave its inputs as they were");
        using (torch.no_grad())
            return new Result(output.detach(), q.grad?.clone(), k.grad?.clone(), v.grad?.clone());
    }

    static (Tensor q, Tensor k, Tensor v) Inputs(long batch = 2, long heads = 3, long seq = 7, long headDim = 4)
    {
        var g = new Generator(23);
        return (torch.randn(batch, heads, seq, headDim, generator: g),
                torch.randn(batch, heads, seq, headDim, generator: g),
                torch.randn(batch, heads, seq, headDim, generator: g));
    }

    /// <summary>The output and each gradient of <paramref name="actual"/> match <paramref name="expected"/>'s.</summary>
    static void ShouldMatch(Result actual, Result expected)
    {
        ShouldMatch(actual.Output, expected.Output, "output");
        ShouldMatch(actual.GradQ, expected.GradQ, "gradient of q");
        ShouldMatch(actual.GradK, expected.GradK, "gradient of k");
        ShouldMatch(actual.GradV, expected.GradV, "gradient of v");
    }

    static void ShouldMatch(Tensor? actual, Tensor? expected, string what)
    {
        (actual is null).Should().Be(expected is null, what);
        if (actual is null) return;
        actual.allclose(expected!, rtol: 1e-5, atol: 1e-6).Should().BeTrue($"{what}: max difference {(actual - expected!).abs().max().item<float>()}");
    }

    [Theory]
    [InlineData("no padding", false)]
    [InlineData("right padding", false)]
    [InlineData("left padding", true)]     // causal with left padding: the first rows see no key at all
    [InlineData("no padding", true)]
    public void Output_and_gradients_equal_those_of_the_attention_that_keeps_its_probabilities(string padding, bool causal)
    {
        var (q, k, v) = Inputs();
        using var _q = q; using var _k = k; using var _v = v;
        long[,] real = padding switch
        {
            "right padding" => new long[,] { { 1, 1, 1, 1, 1, 1, 1 }, { 1, 1, 1, 1, 0, 0, 0 } },
            "left padding" => new long[,] { { 1, 1, 1, 1, 1, 1, 1 }, { 0, 0, 0, 1, 1, 1, 1 } },
            _ => new long[,] { { 1, 1, 1, 1, 1, 1, 1 }, { 1, 1, 1, 1, 1, 1, 1 } },
        };
        using var attentionMask = torch.tensor(real);
        using var keyMask = Attention.KeyMask(attentionMask);
        (keyMask is null).Should().Be(padding == "no padding");

        using var expected = Run(recomputed: false, q, k, v, keyMask, causal);
        using var actual = Run(recomputed: true, q, k, v, keyMask, causal);

        ShouldMatch(actual, expected);
    }

    [Fact]
    public void A_batch_whose_matrices_exceed_the_chunk_size_is_computed_in_chunks_with_the_same_results()
    {
        // 20 examples x 8 heads x 256 x 256 floats: 40 MiB of probabilities, three chunks of 7, 7 and 6 examples.
        var (q, k, v) = Inputs(batch: 20, heads: 8, seq: 256, headDim: 8);
        using var _q = q; using var _k = k; using var _v = v;
        var real = new long[20, 256];
        for (int b = 0; b < 20; b++) for (int t = 0; t < 256 - 9 * b; t++) real[b, t] = 1;
        using var attentionMask = torch.tensor(real);
        using var keyMask = Attention.KeyMask(attentionMask);

        using var expected = Run(recomputed: false, q, k, v, keyMask, causal: false);
        using var actual = Run(recomputed: true, q, k, v, keyMask, causal: false);

        ShouldMatch(actual, expected);
    }

    [Fact]
    public void Training_attention_over_matrices_above_the_mmap_threshold_takes_this_path_with_the_explicit_results()
    {
        // Projections as a layer hands them over: [batch, seq, hidden], heads as views across them. 12 examples x
        // 12 heads x 256 x 256 floats = 36 MiB, above RecomputedAttention.FasterFromBytes; all-MiniLM-L6-v2's
        // 32 x 12 x 128 x 128 = 24 MiB stays below.
        const int batch = 12, seq = 256, heads = 12, headDim = 8, hidden = heads * headDim;
        const long matrix = (long)batch * heads * seq * seq * sizeof(float);
        var g = new Generator(31);
        using var q0 = torch.randn(batch, seq, hidden, generator: g);
        using var k0 = torch.randn(batch, seq, hidden, generator: g);
        using var v0 = torch.randn(batch, seq, hidden, generator: g);
        using (var big = torch.empty(batch, heads, seq, 1))
            RecomputedAttention.Pays(big, big).Should().BeTrue();
        using (var miniLm = torch.empty(32, 12, 128, 1))
            RecomputedAttention.Pays(miniLm, miniLm).Should().BeFalse();

        (Tensor output, Tensor[] grads) Pass(bool throughRun)
        {
            using var q = q0.detach().requires_grad_(true);
            using var k = k0.detach().requires_grad_(true);
            using var v = v0.detach().requires_grad_(true);
            Tensor output;
            lock (TorchRandomLock.Sync)
            {
                torch.manual_seed(3);
                if (throughRun)
                {
                    long before = LiveHeap.Bytes();
                    output = Attention.Run(q, k, v, heads, keyMask: null, Dropout, training: true);
                    (LiveHeap.Bytes() - before).Should().BeLessThan(matrix / 2, "Run took the recomputing path, which keeps no probabilities");
                }
                else
                {
                    using var qh = q.view(batch, seq, heads, headDim).transpose(1, 2);
                    using var kh = k.view(batch, seq, heads, headDim).transpose(1, 2);
                    using var vh = v.view(batch, seq, heads, headDim).transpose(1, 2);
                    using var context = Attention.Explicit(qh, kh, vh, null, Dropout, causal: false);
                    using var merged = context.transpose(1, 2);
                    output = merged.reshape(batch, seq, hidden);
                }
            }
            using var weights = torch.linspace(-1, 2, output.numel()).view(output.shape);
            using var loss = output.mul(weights).sum();
            loss.backward();
            using (torch.no_grad()) return (output.detach(), new[] { q.grad!.clone(), k.grad!.clone(), v.grad!.clone() });
        }

        var (expected, expectedGrads) = Pass(throughRun: false);
        var (actual, actualGrads) = Pass(throughRun: true);
        using var _e = expected; using var _a = actual;
        ShouldMatch(actual, expected, "output");
        for (int i = 0; i < 3; i++)
            using (actualGrads[i]) using (expectedGrads[i]) ShouldMatch(actualGrads[i], expectedGrads[i], $"gradient of {"qkv"[i]}");
    }

    [Fact]
    public void A_different_seed_draws_a_different_mask_and_the_backward_pass_follows_its_own_draw()
    {
        var (q, k, v) = Inputs();
        using var _q = q; using var _k = k; using var _v = v;
        using var first = Run(recomputed: true, q, k, v, null, causal: false, seed: 1);
        using var second = Run(recomputed: true, q, k, v, null, causal: false, seed: 2);
        using var secondExpected = Run(recomputed: false, q, k, v, null, causal: false, seed: 2);

        first.Output.allclose(second.Output, rtol: 1e-3, atol: 1e-4).Should().BeFalse();
        ShouldMatch(second.GradV, secondExpected.GradV, "gradient of v under the second draw");
        ShouldMatch(second.GradQ, secondExpected.GradQ, "gradient of q under the second draw");
    }

    [Fact]
    public void Inputs_without_a_gradient_get_none_and_the_others_are_unchanged()
    {
        var (q, k, v) = Inputs();
        using var _q = q; using var _k = k; using var _v = v;
        using var expected = Run(recomputed: false, q, k, v, null, causal: false, keyNeedsGrad: false);
        using var actual = Run(recomputed: true, q, k, v, null, causal: false, keyNeedsGrad: false);

        actual.GradK.Should().BeNull();
        ShouldMatch(actual, expected);
    }

    [Fact]
    public void Outside_autograd_or_without_dropout_the_explicit_attention_runs_instead()
    {
        var (q, k, v) = Inputs();
        using var _q = q; using var _k = k; using var _v = v;
        RecomputedAttention.Handles(q, k, v, Dropout).Should().BeFalse("no input needs a gradient");
        using var qg = q.detach().requires_grad_(true);
        RecomputedAttention.Handles(qg, k, v, Dropout).Should().BeTrue();
        RecomputedAttention.Handles(qg, k, v, 0.0).Should().BeFalse();
        using (torch.no_grad()) RecomputedAttention.Handles(qg, k, v, Dropout).Should().BeFalse();
        using var qd = qg.to_type(ScalarType.Float64);
        RecomputedAttention.Handles(qd, k, v, Dropout).Should().BeFalse("float64 is not the fused dropout's type");
    }

    [Fact]
    public void Between_the_passes_autograd_keeps_no_matrix_of_attention_probabilities()
    {
        // [4, 8, 256, 256] float32 probabilities: 8 MiB a matrix; q, k, v and the output: 0.5 MiB each.
        var (q0, k0, v0) = Inputs(batch: 4, heads: 8, seq: 256, headDim: 16);
        using var _q = q0; using var _k = k0; using var _v = v0;
        const long matrix = 4L * 8 * 256 * 256 * sizeof(float);

        long KeptByForward(bool recomputed)
        {
            using var q = q0.detach().requires_grad_(true);
            using var k = k0.detach().requires_grad_(true);
            using var v = v0.detach().requires_grad_(true);
            long before = LiveHeap.Bytes();
            Tensor output;
            lock (TorchRandomLock.Sync)
                output = recomputed ? RecomputedAttention.Apply(q, k, v, null, Dropout, causal: false)
                                    : Attention.Explicit(q, k, v, null, Dropout, causal: false);
            using (output)
            {
                long kept = LiveHeap.Bytes() - before;
                using var loss = output.sum();
                loss.backward();   // frees the graph
                return kept;
            }
        }

        long explicitKeeps = KeptByForward(recomputed: false);
        long recomputedKeeps = KeptByForward(recomputed: true);

        explicitKeeps.Should().BeGreaterThan(matrix * 3 / 2, "the control: the explicit graph holds the probabilities and their dropped copy");
        recomputedKeeps.Should().BeLessThan(matrix / 2);
    }
}
