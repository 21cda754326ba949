using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Models.Kernels;
using Microsoft.ML.LoRA.Training;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.LoRA.Tests.Models;

/// <summary>Our dropout keeps F.dropout's distribution and gradient; attention with dropout matches SDPA when nothing is dropped.</summary>
public class DropoutTests
{
    [Fact]
    public void Training_dropout_zeroes_about_p_of_the_elements_and_scales_the_rest_by_one_over_one_minus_p()
    {
        using var x = torch.rand(200, 1000, generator: new Generator(3)).add_(1.0);
        Tensor y;
        lock (TorchRandomLock.Sync)
        {
            torch.manual_seed(5);
            y = Dropout.Apply(x, 0.2, training: true);
        }
        using (y)
        {
            using var zeroed = y.eq(0.0);
            double share = zeroed.to_type(ScalarType.Float64).mean().item<double>();
            share.Should().BeApproximately(0.2, 0.005);
            using var kept = zeroed.logical_not();
            using var expected = x.div(0.8);
            using var keptY = y.masked_select(kept);
            using var keptExpected = expected.masked_select(kept);
            keptY.allclose(keptExpected, rtol: 1e-6, atol: 0).Should().BeTrue();
        }
    }

    [Fact]
    public void The_gradient_flows_only_through_kept_elements_scaled_like_the_values()
    {
        using var x = torch.ones(64, 64, requires_grad: true);
        Tensor y;
        lock (TorchRandomLock.Sync)
        {
            torch.manual_seed(7);
            y = Dropout.Apply(x, 0.5, training: true);
        }
        using (y)
        {
            using var loss = y.sum();
            loss.backward();
            using var grad = x.grad!.detach().clone();
            using var yValues = y.detach();
            grad.allclose(yValues, rtol: 0, atol: 0).Should().BeTrue("for x = 1 the gradient equals the output: 0 or 1/(1-p)");
            using var twos = grad.eq(2.0);
            twos.any().item<bool>().Should().BeTrue();
        }
    }

    [Fact]
    public void A_transposed_input_is_dropped_like_its_contiguous_copy_and_its_gradient_follows_the_same_elements()
    {
        using var data = torch.rand(96, 80, generator: new Generator(4)).add_(1.0);
        using var transposed = data.t().requires_grad_(true);
        using var copy = transposed.detach().contiguous();
        Tensor fromView, fromCopy;
        lock (TorchRandomLock.Sync)
        {
            torch.manual_seed(12);
            fromView = Dropout.Apply(transposed, 0.3, training: true);
            torch.manual_seed(12);
            fromCopy = Dropout.Apply(copy, 0.3, training: true);
        }
        using (fromView)
        using (fromCopy)
        {
            fromView.detach().allclose(fromCopy, rtol: 0, atol: 0).Should().BeTrue("the mask follows the logical element order");
            using var upstream = torch.rand(96, 80, generator: new Generator(5)).t();   // a non-contiguous gradient
            fromView.backward(new[] { upstream });
            using var grad = transposed.grad!.detach().clone();
            using var kept = fromCopy.ne(0.0);
            using var expected = upstream.mul(kept).div_(0.7);
            grad.allclose(expected, rtol: 1e-6, atol: 0).Should().BeTrue();
        }
    }

    [Fact]
    public void Dropout_in_training_leaves_only_its_output_in_the_dispose_scope()
    {
        // Nothing else of the forward pass may live until the scope ends: no mask, no second handle on the output,
        // no placeholder for a gradient (that would hold a tensor as large as the output through the whole step).
        using var x = torch.rand(256, 300, generator: new Generator(6)).requires_grad_(true);
        using var scope = torch.NewDisposeScope();
        Tensor y;
        lock (TorchRandomLock.Sync) y = Dropout.Apply(x, 0.1, training: true);

        scope.DisposablesCount.Should().Be(1);
        y.requires_grad.Should().BeTrue();
    }

    [Fact]
    public void A_float_tensor_past_two_gibibytes_takes_the_mask_path_since_a_span_cannot_cover_its_bytes()
    {
        // torch.empty maps the memory without touching it: 2.4 GB of address space, no resident pages.
        using var large = torch.empty(600_000_000L, ScalarType.Float32);
        using var justUnder = torch.empty(int.MaxValue / sizeof(float), ScalarType.Float32);

        FusedDropout.Handles(large).Should().BeFalse("its bytes do not fit the span the fused kernels write through");
        FusedDropout.Handles(justUnder).Should().BeTrue();
        FluentActions.Invoking(() => justUnder.bytes.Length).Should().NotThrow();
    }

    [Fact]
    public void Outside_training_or_with_p_zero_the_input_passes_unchanged()
    {
        using var x = torch.rand(8, 8, generator: new Generator(1));
        using var eval = Dropout.Apply(x, 0.3, training: false);
        using var none = Dropout.Apply(x, 0.0, training: true);

        eval.allclose(x, rtol: 0, atol: 0).Should().BeTrue();
        none.allclose(x, rtol: 0, atol: 0).Should().BeTrue();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Explicit_attention_without_dropout_equals_scaled_dot_product_attention(bool causal)
    {
        var g = new Generator(11);
        using var q = torch.randn(2, 3, 6, 4, generator: g);
        using var k = torch.randn(2, 3, 6, 4, generator: g);
        using var v = torch.randn(2, 3, 6, 4, generator: g);
        using var real = torch.tensor(new long[,] { { 1, 1, 1, 1, 1, 1 }, { 1, 1, 1, 1, 0, 0 } });
        using var keyMask = causal ? null : Attention.KeyMask(real);

        using var ours = Attention.Explicit(q, k, v, keyMask, dropout: 0.0, causal);
        using var sdpa = F.scaled_dot_product_attention(q, k, v, keyMask, 0.0, causal);

        ours.allclose(sdpa, rtol: 1e-5, atol: 1e-6).Should().BeTrue();
    }
}
