using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models.Quantization;
using TorchSharp;
using static Microsoft.ML.LoRA.Tests.Models.Quantization.QuantizationReference;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tests.Lora;

/// <summary>
/// LoftQ initialisation as PEFT's loftq_init computes it, with the LoRA scaling honoured: the base is the quantized
/// weight (or residual), B·A the truncated SVD of what quantization left out, split evenly between the factors.
/// </summary>
public class LoftqTests
{
    static Tensor RandomWeight(long rows, long columns, int seed) =>
        torch.randn(new[] { rows, columns }, generator: new Generator((ulong)seed));

    static float[] Values(Tensor t) => t.contiguous().data<float>().ToArray();

    static double MaxAbs(Tensor t) => t.abs().max().item<float>();

    [Fact]
    public void One_iteration_keeps_the_quantized_weight_as_base_and_the_best_rank_r_fit_of_the_rest_in_the_adapter()
    {
        using var w = RandomWeight(8, 6, seed: 1);
        var expectedBase = FourBit(Values(w), Nf4, 64);

        using var result = Loftq.Initialize(w, bits: 4, rank: 2, iterations: 1, scaling: 1);

        result.Base.shape.Should().Equal(8, 6);
        result.A.shape.Should().Equal(2, 6);
        result.B.shape.Should().Equal(8, 2);
        MaxDifference(Values(result.Base), expectedBase).Should().BeLessThan(1e-6);
        // Eckart–Young: what rank 2 leaves of W − base is the residual's singular values from the third on.
        var singular = Values(torch.linalg.svdvals(w - result.Base));
        var left = (w - result.Base - result.B.matmul(result.A)).norm().item<float>();
        left.Should().BeApproximately((float)Math.Sqrt(singular.Skip(2).Sum(v => (double)v * v)), 1e-5f);
        // The singular values are split evenly: AᵀA's and BᵀB's diagonals are both the top two singular values.
        var a = result.A.matmul(result.A.t());
        var b = result.B.t().matmul(result.B);
        MaxAbs(a - torch.diag(torch.tensor(singular.Take(2).ToArray()))).Should().BeLessThan(1e-5);
        MaxAbs(b - a).Should().BeLessThan(1e-5);
        result.PlainError.Should().BeApproximately(RelativeError(Values(w), expectedBase), 1e-6);
        result.LoftqError.Should().BeApproximately(left / w.norm().item<float>(), 1e-6);
    }

    [Fact]
    public void A_full_rank_adapter_recovers_the_weight_exactly()
    {
        using var w = RandomWeight(8, 6, seed: 2);

        using var result = Loftq.Initialize(w, bits: 4, rank: 6, iterations: 1, scaling: 1);

        result.LoftqError.Should().BeLessThan(1e-5);
        result.PlainError.Should().BeGreaterThan(0.05);
        MaxAbs(result.Base + result.B.matmul(result.A) - w).Should().BeLessThan(1e-5);
    }

    [Fact]
    public void A_low_rank_adapter_leaves_less_error_than_a_quantized_base_alone()
    {
        using var w = RandomWeight(64, 48, seed: 3);

        using var result = Loftq.Initialize(w, bits: 4, rank: 8, iterations: 1, scaling: 1);

        result.PlainError.Should().BeApproximately(0.092, 0.01);
        result.LoftqError.Should().BeLessThan(result.PlainError * 0.95);
    }

    [Fact]
    public void The_scaling_is_divided_out_of_the_factors_so_that_base_plus_s_BA_still_fits_the_weight()
    {
        using var w = RandomWeight(16, 12, seed: 4);
        using var one = Loftq.Initialize(w, bits: 4, rank: 3, iterations: 1, scaling: 1);

        using var two = Loftq.Initialize(w, bits: 4, rank: 3, iterations: 1, scaling: 2);

        MaxAbs(two.B.matmul(two.A).mul(2) - one.B.matmul(one.A)).Should().BeLessThan(1e-5, "B·A is half as large at s = 2");
        MaxAbs(two.A.mul(Math.Sqrt(2)) - one.A).Should().BeLessThan(1e-5);
        MaxAbs(two.B.mul(Math.Sqrt(2)) - one.B).Should().BeLessThan(1e-5);
        two.Base.eq(one.Base).all().item<bool>().Should().BeTrue();
        two.LoftqError.Should().BeApproximately(one.LoftqError, 1e-6);
    }

    [Fact]
    public void More_iterations_are_not_worse_than_one()
    {
        using var w = RandomWeight(64, 48, seed: 5);
        using var once = Loftq.Initialize(w, bits: 4, rank: 8, iterations: 1, scaling: 0.5);

        using var fiveTimes = Loftq.Initialize(w, bits: 4, rank: 8, iterations: 5, scaling: 0.5);

        fiveTimes.LoftqError.Should().BeLessThanOrEqualTo(once.LoftqError * 1.001);
        fiveTimes.PlainError.Should().Be(once.PlainError, "the plain error is that of the weight quantized once");
        // After the first round the base is the quantized W − s·B·A, not the quantized W.
        using var residual = w - once.B.matmul(once.A).mul(0.5);
        using var twice = Loftq.Initialize(w, bits: 4, rank: 8, iterations: 2, scaling: 0.5);
        MaxDifference(Values(twice.Base), FourBit(Values(residual), Nf4, 64)).Should().BeLessThan(1e-5);
    }

    [Fact]
    public void Eight_bits_quantizes_rows_to_int8()
    {
        using var w = RandomWeight(16, 12, seed: 6);

        using var result = Loftq.Initialize(w, bits: 8, rank: 2, iterations: 1, scaling: 1);

        MaxDifference(Values(result.Base), Int8(Values(w), 16, 12)).Should().BeLessThan(1e-6);
        result.PlainError.Should().BeLessThan(0.02);
        result.LoftqError.Should().BeLessThan(result.PlainError);
    }

    [Fact]
    public void Other_bit_widths_ranks_iterations_and_scalings_are_refused()
    {
        using var w = RandomWeight(8, 6, seed: 7);

        FluentActions.Invoking(() => Loftq.Initialize(w, 3, 2, 1, 1)).Should().Throw<ArgumentException>().WithMessage("*4 bits*8 bits*");
        FluentActions.Invoking(() => Loftq.Initialize(w, 4, 0, 1, 1)).Should().Throw<ArgumentException>().WithMessage("*rank*");
        FluentActions.Invoking(() => Loftq.Initialize(w, 4, 7, 1, 1)).Should().Throw<ArgumentException>().WithMessage("*rank*between 1 and 6*");
        FluentActions.Invoking(() => Loftq.Initialize(w, 4, 2, 0, 1)).Should().Throw<ArgumentException>().WithMessage("*iteration*");
        FluentActions.Invoking(() => Loftq.Initialize(w, 4, 2, 1, 0)).Should().Throw<ArgumentException>().WithMessage("*scaling*");
    }
}
