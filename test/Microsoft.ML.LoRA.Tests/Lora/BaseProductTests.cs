using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.LoRA.Tests.Lora;

/// <summary>
/// Each way a <see cref="LoraLinear"/> multiplies by its frozen weight (fp32, bf16, int8) computes what the layer
/// computed before the base product became a strategy, with the adapter's part added on top in fp32.
/// </summary>
public class BaseProductTests
{
    static LoraLinear Adapted(bool fanInFanOut)
    {
        lock (Microsoft.ML.LoRA.TorchRandomLock.Sync)
        {
            torch.manual_seed(9);
            var layer = new LoraLinear(96, 64, fanInFanOut: fanInFanOut);
            layer.AttachAdapter(rank: 4, alpha: 8, dropout: 0.0, LoraScaling.AlphaOverRank, LoraInit.KaimingUniform);
            using (torch.no_grad())
            {
                layer.LoraB.normal_(0, 0.5);
                layer.bias!.normal_(0, 1);
            }
            layer.eval();
            return layer;
        }
    }

    static Tensor Input(ulong seed, params long[] shape)
    {
        using var generator = new Generator(seed);
        return torch.randn(shape, generator: generator);
    }

    static double MaxRelative(Tensor a, Tensor b) => (a - b).abs().max().item<float>() / Math.Max(1e-12, b.abs().max().item<float>());

    static double RelativeError(Tensor actual, Tensor expected) => (actual - expected).norm().item<float>() / expected.norm().item<float>();

    /// <summary>The base weight [out, in], whatever the layer's layout.</summary>
    static Tensor BaseWeight(LoraLinear layer) => (layer.FanInFanOut ? layer.weight.t() : layer.weight).detach();

    /// <summary>scaling · x·Aᵀ·Bᵀ, plain LoRA's part of the output.</summary>
    static Tensor Update(LoraLinear layer, Tensor x) => x.matmul(layer.LoraA.t()).matmul(layer.LoraB.t()) * (8.0 / 4);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_dense_product_is_f_linear_over_the_weight_in_its_layout(bool fanInFanOut)
    {
        using var scope = torch.NewDisposeScope();
        using var layer = Adapted(fanInFanOut);
        var x = Input(1, 5, 96);
        var baseOnly = F.linear(x, BaseWeight(layer), layer.bias);

        var y = layer.forward(x);
        layer.AdapterEnabled = false;
        var withoutAdapter = layer.forward(x);

        MaxRelative(withoutAdapter, baseOnly).Should().Be(0);
        MaxRelative(y, baseOnly + Update(layer, x)).Should().BeLessThan(1e-5);
        using (torch.no_grad())
        {
            layer.AdapterEnabled = true;
            MaxRelative(layer.EvalWeight(x)!, BaseWeight(layer) + layer.LoraB.matmul(layer.LoraA) * (8.0 / 4)).Should().BeLessThan(1e-6);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_bf16_product_rounds_input_weight_and_bias_and_returns_the_inputs_type(bool fanInFanOut)
    {
        using var scope = torch.NewDisposeScope();
        using var layer = Adapted(fanInFanOut);
        var x = Input(2, 5, 96);
        var fp32 = F.linear(x, BaseWeight(layer), layer.bias);
        var bf16 = F.linear(x.to_type(ScalarType.BFloat16), BaseWeight(layer).to_type(ScalarType.BFloat16),
            layer.bias!.to_type(ScalarType.BFloat16)).to_type(ScalarType.Float32);

        layer.ComputeDtype = ScalarType.BFloat16;
        var y = layer.forward(x);
        layer.AdapterEnabled = false;
        var withoutAdapter = layer.forward(x);

        withoutAdapter.dtype.Should().Be(ScalarType.Float32);
        MaxRelative(withoutAdapter, bf16).Should().Be(0);
        RelativeError(withoutAdapter, fp32).Should().BeInRange(1e-5, 0.02, "bf16 rounding, nothing more");
        MaxRelative(y, bf16 + Update(layer, x)).Should().BeLessThan(1e-5, "the adapter stays fp32");
        using (torch.no_grad()) layer.EvalWeight(x).Should().BeNull("a fold in fp32 would not reproduce bf16's rounding");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_int8_product_packs_the_weight_with_the_adapters_update_and_serves_only_eval_without_autograd(bool fanInFanOut)
    {
        if (!Int8Weight.IsAvailable) return;   // a libtorch without FBGEMM: Int8ScoringTests covers the refusal
        using var scope = torch.NewDisposeScope();
        using var layer = Adapted(fanInFanOut);
        var x = Input(3, 5, 96);
        var fp32 = layer.forward(x).detach();
        var evalWeight = BaseWeight(layer) + layer.LoraB.matmul(layer.LoraA).detach() * (8.0 / 4);
        using var reference = Int8Weight.Pack(evalWeight, layer.bias);

        layer.QuantizeToInt8();
        Tensor int8;
        using (torch.no_grad()) int8 = layer.forward(x);
        var withAutograd = layer.forward(x);

        MaxRelative(int8, reference.Multiply(x)).Should().BeLessThan(1e-6);
        RelativeError(int8, fp32).Should().BeInRange(1e-4, 0.03);
        MaxRelative(withAutograd, fp32).Should().BeLessThan(1e-6);
        MaxRelative(reference.DenseWeight(), evalWeight).Should().BeLessThan(0.01, "dequantized, within half a step of 1/127 of the range");
    }
}
