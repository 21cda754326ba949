using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tests.Lora;

/// <summary>Taking an adapter off a layer: the layer is its base again, and the adapter, unchanged, can go back on.</summary>
public class AdapterDetachTests
{
    static LoraLinear Adapted(bool dora = false)
    {
        lock (Microsoft.ML.LoRA.TorchRandomLock.Sync)
        {
            torch.manual_seed(5);
            var layer = new LoraLinear(16, 12);
            layer.AttachAdapter(rank: 3, alpha: 6, dropout: 0.0, LoraScaling.AlphaOverRank, LoraInit.KaimingUniform, dora);
            using (torch.no_grad()) layer.LoraB.normal_(0, 0.5);
            layer.eval();
            return layer;
        }
    }

    static Tensor Input()
    {
        using var generator = new Generator(23);
        return torch.randn(new long[] { 4, 16 }, generator: generator);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_detached_adapter_leaves_the_base_product_and_goes_back_on_unchanged(bool dora)
    {
        using var layer = Adapted(dora);
        using var _ = torch.no_grad();
        var x = Input();
        var adapted = layer.forward(x);

        var adapter = layer.Detach();
        var bare = layer.forward(x);
        var parametersOff = layer.named_parameters().Select(p => p.name).ToList();
        layer.Attach(adapter);
        var again = layer.forward(x);

        layer.HasAdapter.Should().BeTrue();
        bare.sub(torch.nn.functional.linear(x, layer.weight, layer.bias)).abs().max().item<float>().Should().BeLessThan(1e-6f);
        again.sub(adapted).abs().max().item<float>().Should().Be(0);
        parametersOff.Should().Equal("weight", "bias");
        layer.named_parameters().Select(p => p.name).Should().Contain(new[] { "lora_A.weight", "lora_B.weight" });
    }

    [Fact]
    public void Detaching_is_refused_while_the_adapter_is_merged_and_without_an_adapter()
    {
        using var layer = Adapted();
        layer.Merge();

        layer.Invoking(l => l.Detach()).Should().Throw<InvalidOperationException>().WithMessage("*merged*unmerge*");
        layer.Unmerge();
        layer.Detach();
        layer.Invoking(l => l.Detach()).Should().Throw<InvalidOperationException>().WithMessage("*no adapter*");
    }

    [Fact]
    public void Detaching_drops_the_int8_snapshot_that_held_the_adapters_update()
    {
        if (!Int8Scoring.IsAvailable) return;
        using var layer = Adapted();
        layer.QuantizeToInt8();

        layer.Detach();

        layer.IsInt8.Should().BeFalse();
    }
}
