using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Models.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tests.Lora;

/// <summary>The LoRA layer: output = base + scaling·B·A·x; merge, unmerge and disable behave.</summary>
public class LoraLinearTests
{
    static LoraLinear Trained(bool fanInFanOut, LoraScaling scaling = LoraScaling.AlphaOverRank)
    {
        lock (Microsoft.ML.LoRA.TorchRandomLock.Sync)
        {
            torch.manual_seed(3);
            var layer = new LoraLinear(24, 40, fanInFanOut: fanInFanOut);
            layer.AttachAdapter(rank: 4, alpha: 8, dropout: 0.0, scaling, LoraInit.KaimingUniform);
            using (torch.no_grad()) layer.LoraB.normal_(0, 0.5);   // as if trained: B is no longer zero
            layer.eval();
            return layer;
        }
    }

    /// <summary>Inputs from a local generator, so these tests never draw from the global one a concurrent fit seeded.</summary>
    static Tensor Input(params long[] shape)
    {
        using var generator = new Generator(17);
        return torch.randn(shape, generator: generator);
    }

    static double MaxRelative(Tensor a, Tensor b) => (a - b).abs().max().item<float>() / Math.Max(1e-12, b.abs().max().item<float>());

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Merged_outputs_equal_unmerged_within_1e_5_relative(bool fanInFanOut)
    {
        using var layer = Trained(fanInFanOut);
        using var x = Input(5, 7, 24);
        using var unmerged = layer.forward(x);

        layer.Merge();
        using var merged = layer.forward(x);
        layer.Unmerge();
        using var again = layer.forward(x);

        MaxRelative(merged, unmerged).Should().BeLessThan(1e-5);
        MaxRelative(again, unmerged).Should().BeLessThan(1e-5);
        layer.Merged.Should().BeFalse();
    }

    [Fact]
    public void In_training_the_adapter_sees_its_input_through_inverted_dropout()
    {
        const double p = 0.25;
        LoraLinear layer;
        lock (Microsoft.ML.LoRA.TorchRandomLock.Sync)
        {
            torch.manual_seed(4);
            layer = new LoraLinear(24, 40);
            layer.AttachAdapter(rank: 4, alpha: 8, dropout: p, LoraScaling.AlphaOverRank, LoraInit.KaimingUniform);
            using (torch.no_grad()) layer.LoraB.normal_(0, 0.5);
        }
        using (layer)
        using (var x = Input(6, 24))
        {
            layer.train();
            Tensor y, keep;
            lock (Microsoft.ML.LoRA.TorchRandomLock.Sync)
            {
                torch.manual_seed(21);
                y = layer.forward(x);
                torch.manual_seed(21);
                keep = DropoutMask.Keep(x, p);   // the mask the layer drew
            }
            using (y)
            using (keep)
            {
                using Scalar scaling = 8.0 / 4;
                using Scalar inverted = 1 / (1 - p);
                using var dropped = x.mul(keep).mul(inverted);
                using var expected = x.matmul(layer.weight.t()) + layer.bias! + dropped.matmul(layer.LoraA.t()).matmul(layer.LoraB.t()) * scaling;
                MaxRelative(y, expected).Should().BeLessThan(1e-5);
                keep.all().item<bool>().Should().BeFalse("some inputs were dropped");
            }
        }
    }

    [Fact]
    public void The_output_is_the_base_plus_the_scaled_low_rank_update()
    {
        using var layer = Trained(false);
        using var x = Input(3, 24);

        using var y = layer.forward(x);
        using Scalar scaling = 8.0 / 4;   // alpha / r
        using var expected = x.matmul(layer.weight.t()) + layer.bias! + x.matmul(layer.LoraA.t()).matmul(layer.LoraB.t()) * scaling;

        MaxRelative(y, expected).Should().BeLessThan(1e-5);
    }

    [Fact]
    public void Disabling_the_adapter_gives_the_base_layer()
    {
        using var layer = Trained(false);
        using var x = Input(3, 24);
        using var baseOnly = nn.functional.linear(x, layer.weight, layer.bias);

        layer.AdapterEnabled = false;
        using var y = layer.forward(x);

        MaxRelative(y, baseOnly).Should().Be(0);
    }

    [Fact]
    public void A_fresh_adapter_changes_nothing_because_b_starts_at_zero()
    {
        lock (Microsoft.ML.LoRA.TorchRandomLock.Sync)
        {
            using var layer = new LoraLinear(16, 8);
            using var x = torch.randn(2, 16);
            using var before = layer.forward(x);
            foreach (var init in new[] { LoraInit.KaimingUniform })
                layer.AttachAdapter(4, 8, 0.0, LoraScaling.AlphaOverRank, init);
            using var after = layer.forward(x);

            after.eq(before).all().item<bool>().Should().BeTrue();
            layer.LoraA.abs().sum().item<float>().Should().BeGreaterThan(0);
        }
    }

    [Theory]
    [InlineData(LoraScaling.AlphaOverRank, 16.0 / 4)]
    [InlineData(LoraScaling.RsLora, 8.0)]
    [InlineData(LoraScaling.Alpha, 16.0)]
    public void Scaling_follows_the_chosen_rule(LoraScaling scaling, double expected)
    {
        LoraOptions.ScaleFor(scaling, rank: 4, alpha: 16).Should().BeApproximately(expected, 1e-12);
    }

    [Fact]
    public void Gaussian_and_scaled_randn_initialisations_have_their_spread()
    {
        lock (Microsoft.ML.LoRA.TorchRandomLock.Sync)
        {
            torch.manual_seed(1);
            using var gaussian = new LoraLinear(2000, 10);
            gaussian.AttachAdapter(16, 16, 0, LoraScaling.AlphaOverRank, LoraInit.Gaussian);
            using var scaled = new LoraLinear(2000, 10);
            scaled.AttachAdapter(16, 16, 0, LoraScaling.AlphaOverRank, LoraInit.ScaledRandn);

            gaussian.LoraA.std().item<float>().Should().BeApproximately(1f / 16, 0.005f);
            scaled.LoraA.std().item<float>().Should().BeApproximately(1f / 4, 0.01f);
            gaussian.LoraB.abs().sum().item<float>().Should().Be(0);
        }
    }
}
