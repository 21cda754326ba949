using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tests.Lora;

/// <summary>
/// The adapter seam of <see cref="LoraLinear"/>: a variant other than plain LoRA, attached through
/// <see cref="LoraLinear.Attach"/>, decides the layer's forward, update and merge; and a merge never writes NaN.
/// </summary>
public class AdapterSeamTests
{
    /// <summary>
    /// A test variant shaped like DoRA, whose merge is not weight + update: the output is g ⊙ (x·(W + s·B·A)ᵀ) for a
    /// fixed gain g per output, so the merged weight is diag(g)·(W + s·B·A). Only for a layer without bias (the gain
    /// would scale a bias too, which a merge of the weight cannot express).
    /// </summary>
    sealed class GainAdapter : ILinearAdapter
    {
        readonly Linear _a, _b;
        readonly Tensor _gain;

        public GainAdapter(long inFeatures, long outFeatures, int rank, double scaling, IReadOnlyList<(string Name, nn.Module Module)>? modules = null)
        {
            lock (Microsoft.ML.LoRA.TorchRandomLock.Sync)
            {
                _a = nn.Linear(inFeatures, rank, hasBias: false);
                _b = nn.Linear(rank, outFeatures, hasBias: false);
            }
            using (torch.no_grad())
            {
                using var a = Input(31, rank, inFeatures);
                using var b = Input(32, outFeatures, rank);
                _a.weight!.copy_(a);
                _b.weight!.copy_(b);
            }
            using var noise = Input(33, outFeatures);
            _gain = noise.sigmoid().add(0.5);   // in (0.5, 1.5): never zero, so Unmerge can divide by it
            Rank = rank;
            Scaling = scaling;
            Modules = modules ?? new (string, nn.Module)[] { (AdapterNames.LoraA, _a), (AdapterNames.LoraB, _b) };
        }

        public Tensor Gain => _gain;
        public IReadOnlyList<(string Name, nn.Module Module)> Modules { get; }
        public int Rank { get; }
        public double Alpha { get; private set; }
        public double Scaling { get; private set; }
        public Parameter A => _a.weight!;
        public Parameter B => _b.weight!;

        public void SetScaling(double alpha, double scaling) => (Alpha, Scaling) = (alpha, scaling);

        public Tensor Forward(LoraLinear layer, Tensor x, Tensor y, bool training)
        {
            using Scalar s = Scaling;
            using var up = _b.forward(_a.forward(x)).mul(s);
            return y.add(up).mul(_gain);
        }

        public Tensor DeltaWeight()
        {
            using Scalar s = Scaling;
            return B.matmul(A).mul(s);
        }

        public Tensor Merge(Tensor weight)
        {
            using var delta = DeltaWeight();
            using var sum = weight.add(delta);
            return sum.mul(_gain.unsqueeze(1));
        }

        public Tensor Unmerge(Tensor mergedWeight)
        {
            using var delta = DeltaWeight();
            using var unscaled = mergedWeight.div(_gain.unsqueeze(1));
            return unscaled.sub(delta);
        }
    }

    static LoraLinear Layer(bool fanInFanOut, bool hasBias = false)
    {
        lock (Microsoft.ML.LoRA.TorchRandomLock.Sync)
        {
            torch.manual_seed(7);
            return new LoraLinear(24, 40, hasBias: hasBias, fanInFanOut: fanInFanOut);
        }
    }

    /// <summary>Inputs from a local generator, so these tests never draw from the global one a concurrent fit seeded.</summary>
    static Tensor Input(ulong seed, params long[] shape)
    {
        using var generator = new Generator(seed);
        return torch.randn(shape, generator: generator);
    }

    static double MaxRelative(Tensor a, Tensor b) => (a - b).abs().max().item<float>() / Math.Max(1e-12, b.abs().max().item<float>());

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Another_variant_attached_through_the_seam_decides_forward_update_and_merge(bool fanInFanOut)
    {
        using var scope = torch.NewDisposeScope();
        using var layer = Layer(fanInFanOut);
        var adapter = new GainAdapter(24, 40, rank: 3, scaling: 0.5);
        using var x = Input(5, 6, 24);
        var w = (fanInFanOut ? layer.weight.t() : layer.weight).detach().clone();   // [out, in]
        var update = adapter.B.matmul(adapter.A).mul(0.5).detach();

        layer.Attach(adapter);
        layer.eval();
        using var y = layer.forward(x);

        layer.HasAdapter.Should().BeTrue();
        layer.Adapter.Should().BeSameAs(adapter);
        layer.Rank.Should().Be(3);
        layer.LoraA.Should().BeSameAs(adapter.A);
        layer.named_parameters().Select(p => p.name).Should().Equal("weight", "lora_A.weight", "lora_B.weight");
        var expected = x.matmul((w + update).t()).mul(adapter.Gain);
        MaxRelative(y, expected).Should().BeLessThan(1e-5, "the variant's forward runs, not plain LoRA's");
        MaxRelative(layer.DeltaWeight(), fanInFanOut ? update.t() : update).Should().BeLessThan(1e-6, "in the weight's own layout");

        layer.Merge();
        using var merged = layer.forward(x);
        var mergedWeight = (w + update).mul(adapter.Gain.unsqueeze(1));
        MaxRelative(fanInFanOut ? layer.weight.t() : layer.weight, mergedWeight).Should().BeLessThan(1e-6, "the variant's merge, not weight + update");
        MaxRelative(merged, y).Should().BeLessThan(1e-5);

        layer.Unmerge();
        using var again = layer.forward(x);
        MaxRelative(fanInFanOut ? layer.weight.t() : layer.weight, w).Should().BeLessThan(1e-5);
        MaxRelative(again, y).Should().BeLessThan(1e-5);
    }

    [Fact]
    public void A_variant_registering_a_name_not_listed_as_an_adapters_is_refused()
    {
        using var scope = torch.NewDisposeScope();
        using var layer = Layer(fanInFanOut: false);
        using var extra = nn.Linear(24, 40, hasBias: false);
        var adapter = new GainAdapter(24, 40, rank: 2, scaling: 1, new (string, nn.Module)[] { ("gain", extra) });

        var act = () => layer.Attach(adapter);

        act.Should().Throw<ArgumentException>().WithMessage("*'gain'*");
        layer.HasAdapter.Should().BeFalse();
        layer.named_parameters().Select(p => p.name).Should().Equal("weight");
    }

    [Fact]
    public void Adapter_parameters_are_told_by_the_names_adapter_variants_declare()
    {
        AdapterNames.All.Should().Equal("lora_A", "lora_B", "lora_magnitude_vector");
        LoraLinear.IsAdapterParameter("bert.encoder.layer.0.attention.self.query.lora_A.weight").Should().BeTrue();
        LoraLinear.IsAdapterParameter("bert.encoder.layer.0.attention.self.query.lora_magnitude_vector.weight").Should().BeTrue();
        LoraLinear.IsAdapterParameter("bert.encoder.layer.0.attention.self.query.lora_B.weight").Should().BeTrue();
        LoraLinear.IsAdapterParameter("bert.encoder.layer.0.attention.self.query.weight").Should().BeFalse();
        LoraLinear.IsAdapterParameter("classifier.lora_Ax.weight").Should().BeFalse();
    }

    [Theory]
    [InlineData(false, double.NaN)]
    [InlineData(true, double.PositiveInfinity)]
    public void Merging_an_adapter_with_a_non_finite_factor_throws_and_leaves_the_weight_unchanged(bool fanInFanOut, double value)
    {
        using var scope = torch.NewDisposeScope();
        using var layer = Layer(fanInFanOut, hasBias: true);
        lock (Microsoft.ML.LoRA.TorchRandomLock.Sync)
            layer.AttachAdapter(rank: 4, alpha: 8, dropout: 0.0, LoraScaling.AlphaOverRank, LoraInit.KaimingUniform);
        using (torch.no_grad())
        {
            layer.LoraB.normal_(0, 0.5);
            layer.LoraB[3, 1] = torch.tensor((float)value);
        }
        layer.eval();
        var before = layer.weight.detach().clone();

        var merge = () => layer.Merge();
        var mergedWeight = () => layer.MergedWeight();

        merge.Should().Throw<InvalidOperationException>().WithMessage("*NaN or infinite*unmerged*");
        mergedWeight.Should().Throw<InvalidOperationException>();
        layer.Merged.Should().BeFalse();
        layer.weight.eq(before).all().item<bool>().Should().BeTrue("a refused merge writes nothing");
    }
}
