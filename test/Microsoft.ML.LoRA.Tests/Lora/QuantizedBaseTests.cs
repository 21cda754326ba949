using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Models.Quantization;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.LoRA.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.LoRA.Tests.Lora;

/// <summary>
/// QLoRA's frozen base: the transformer's linear layers keep packed weights, dequantize them for each product in the
/// forward and the backward pass, train adapters on top, and a saved model quantizes its base again when it loads.
/// </summary>
public class QuantizedBaseTests(ITestOutputHelper output)
{
    static readonly QuantizedBase Nf4 = new(BaseQuantization.Nf4, DoubleQuantization: true);

    /// <summary>The bert fixture, seeded alike every time, so that the modules the checkpoint lacks are created alike.</summary>
    static SequenceClassifier Fixture(QuantizedBase? quantization)
    {
        lock (TorchRandomLock.Sync)   // no other test draws between the seed and the load
        {
            torch.manual_seed(11);
            return PretrainedModel.Load(SharedData.Fixture("bert"), numLabels: 2, quantization: quantization);
        }
    }

    [Fact]
    public void A_quantized_layer_multiplies_by_the_dequantized_weight_forward_and_backward_and_keeps_no_weight_parameter()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        using var layer = new LoraLinear(96, 40);
        var dense = layer.weight.detach().clone();
        var x = torch.randn(5, 96, requires_grad: true);
        var xReference = x.detach().clone().requires_grad_(true);

        layer.QuantizeBase(Nf4);
        var dequantized = layer.BaseWeight().clone();
        var y = layer.forward(x);
        y.sum().backward();
        var reference = F.linear(xReference, dequantized, layer.bias);
        reference.sum().backward();

        layer.IsQuantized.Should().BeTrue();
        layer.named_parameters().Select(p => p.name).Should().Equal("bias");
        var access = () => layer.weight;
        access.Should().Throw<InvalidOperationException>().WithMessage("*quantized*BaseWeight*");
        y.sub(reference).abs().max().item<float>().Should().BeLessThan(1e-5f);
        x.grad!.sub(xReference.grad!).abs().max().item<float>().Should().BeLessThan(1e-5f, "the backward pass dequantizes the same weight");
        dequantized.sub(dense).abs().max().item<float>().Should().BeGreaterThan(0, "NF4 rounds the weight");
        (layer.BaseWeightBytes * 8.0 / (96 * 40)).Should().BeLessThan(4.3);
    }

    [Fact]
    public void Under_bf16_products_a_quantized_layer_multiplies_in_bf16_and_answers_in_the_input_type()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(5);
        using var layer = new LoraLinear(64, 32);
        layer.QuantizeBase(Nf4);
        var x = torch.randn(4, 64);
        using var _ = torch.no_grad();
        var fp32 = layer.forward(x);

        layer.ComputeDtype = ScalarType.BFloat16;
        var bf16 = layer.forward(x);
        var reference = F.linear(x.to_type(ScalarType.BFloat16), layer.BaseWeight().to_type(ScalarType.BFloat16)).to_type(ScalarType.Float32);

        bf16.dtype.Should().Be(ScalarType.Float32);
        bf16.sub(fp32).abs().max().item<float>().Should().BeGreaterThan(0, "the product rounds to bf16");
        bf16.sub(reference).abs().max().item<float>().Should().BeLessThan(1e-6f, "the bias is zero, so the product is all there is");
    }

    [Fact]
    public void An_adapter_on_a_quantized_layer_trains_and_the_base_gets_no_gradient()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(4);
        using var layer = new LoraLinear(64, 32);
        layer.QuantizeBase(Nf4);
        layer.AttachAdapter(4, 8, 0, LoraScaling.AlphaOverRank, LoraInit.KaimingUniform);
        layer.LoraA.requires_grad = layer.LoraB.requires_grad = true;
        layer.train();

        layer.forward(torch.randn(3, 64)).pow(2).sum().backward();

        layer.LoraB.grad!.abs().sum().item<float>().Should().BeGreaterThan(0);
        layer.parameters().Where(p => !p.requires_grad).All(p => p.grad is null).Should().BeTrue("the bias is frozen and the base has no parameter");
        var merge = () => layer.Merge();
        merge.Should().Throw<InvalidOperationException>().WithMessage("*quantized*MergedWeight*");
        using (torch.no_grad())
        {
            var expected = layer.BaseWeight().add(layer.DeltaWeight());
            layer.MergedWeight().sub(expected).abs().max().item<float>().Should().BeLessThan(1e-5f);
        }
    }

    [Fact]
    public void Quantizing_while_the_model_is_built_gives_the_model_that_quantizing_after_loading_gives()
    {
        using var built = Fixture(Nf4);
        using var after = Fixture(null);
        using var dense = Fixture(null);
        foreach (var (_, layer) in LoraInjector.LinearLayers(after).Where(l => l.Key.Contains(".layer."))) layer.QuantizeBase(Nf4);

        var linears = LoraInjector.LinearLayers(built);
        linears.Where(l => l.Key.Contains(".layer.")).Should().OnlyContain(l => l.Value.IsQuantized, "every transformer layer's linear layers");
        linears.Where(l => !l.Key.Contains(".layer.")).Should().OnlyContain(l => !l.Value.IsQuantized, "the pooler and the head stay fp32");
        ProbeLogits.Of(built).Should().Equal(ProbeLogits.Of(after));
        var error = ProbeLogits.MaxDifference(ProbeLogits.Of(built), ProbeLogits.Of(dense));
        output.WriteLine($"bert fixture logits, NF4 with double quantization against fp32: max difference {error:G3}");
        error.Should().BeGreaterThan(0).And.BeLessThan(0.5f);
        ParameterCounts.Of(built).Total.Should().Be(ParameterCounts.Of(dense).Total, "packed weights count as the weights they stand for");
    }

    [Fact]
    public void A_merged_checkpoint_of_a_quantized_model_holds_the_dense_weights_it_computed_with()
    {
        using var model = Fixture(Nf4);
        LoraInjector.Apply(model, new LoraOptions { Rank = 2, LoraQuery = true, LoraValue = true });
        var tensors = MergedCheckpoint.MergedTensors(model);
        try
        {
            var layer = LoraInjector.LinearLayers(model)["bert.encoder.layer.0.attention.self.query"];
            using var scope = torch.NewDisposeScope();
            using var _ = torch.no_grad();
            tensors.Keys.Should().Contain("bert.encoder.layer.0.attention.self.query.weight");
            tensors["bert.encoder.layer.0.attention.self.query.weight"].sub(layer.MergedWeight()).abs().max().item<float>().Should().Be(0);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    [Fact]
    public void LoftQ_starts_a_quantized_model_nearer_the_full_precision_model_than_plain_init_and_reloads_from_its_adapter_file()
    {
        using var dir = new TempDir();
        var options = new LoraOptions { Rank = 8, Alpha = 8, Dropout = 0, LoraQuery = true, LoraValue = true, BaseQuantization = BaseQuantization.Nf4 };
        using var dense = Fixture(null);
        var reference = ProbeLogits.Of(dense);
        using var plain = Fixture(options.QuantizedBase);
        LoraInjector.Apply(plain, options);
        var loftqOptions = options.Clone();
        loftqOptions.Init = LoraInit.Loftq;
        float[] loftqLogits;
        LoraInjectionReport report;
        // LoftQ reads the full-precision weights, so the base is packed after the adapters are initialised.
        using (var loftq = Fixture(null))
        {
            report = LoraInjector.Apply(loftq, loftqOptions);
            loftqOptions.QuantizedBase!.ApplyToLayers(loftq);
            loftqLogits = ProbeLogits.Of(loftq);
            PeftAdapter.Save(loftq, dir.Path, loftqOptions);
        }
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, PeftAdapter.ConfigFile)))!;
        using var reloaded = Fixture(null);
        PeftAdapter.Load(reloaded, dir.Path);
        loftqOptions.QuantizedBase!.ApplyToLayers(reloaded);
        using var quantizedFirst = Fixture(loftqOptions.QuantizedBase);
        var intoQuantized = () => PeftAdapter.Load(quantizedFirst, dir.Path);

        float plainError = ProbeLogits.MaxDifference(ProbeLogits.Of(plain), reference), loftqError = ProbeLogits.MaxDifference(loftqLogits, reference);
        output.WriteLine($"bert fixture logits against fp32 at the start of a fit on an NF4 base: plain init {plainError:G3}, LoftQ {loftqError:G3}");
        loftqError.Should().BeLessThan(plainError);
        report.LoftqErrors.Keys.Should().BeEquivalentTo(report.AdaptedModules);
        report.LoftqErrors.Values.Should().OnlyContain(e => e.WithAdapter < e.QuantizedOnly, "the adapter takes the largest part of the quantization error");
        config["init_lora_weights"]!.GetValue<string>().Should().Be("loftq");
        config["loftq_config"]!["loftq_bits"]!.GetValue<int>().Should().Be(4);
        config["loftq_config"]!["loftq_iter"]!.GetValue<int>().Should().Be(1);
        ProbeLogits.MaxDifference(ProbeLogits.Of(reloaded), loftqLogits).Should().BeLessThan(1e-5f, "loading recomputes LoftQ's base as PEFT does");
        LoraInjector.LinearLayers(reloaded).Where(l => l.Key.Contains(".layer.")).Should().OnlyContain(l => l.Value.IsQuantized);
        intoQuantized.Should().Throw<Microsoft.ML.LoRA.Checkpoints.CheckpointFormatException>().WithMessage("*loftq*full-precision*ApplyToLayers*");
    }

    [Fact]
    public void Options_that_cannot_go_together_are_refused_with_the_reason()
    {
        var doubleOnInt8 = () => new LoraOptions { BaseQuantization = BaseQuantization.Int8, DoubleQuantization = true }.Validate();
        var doubleAlone = () => new LoraOptions { DoubleQuantization = true }.Validate();
        var loftqBits = () => new LoraOptions { Init = LoraInit.Loftq, LoftqBits = 3 }.Validate();
        var loftqOnFp4 = () => new LoraOptions { Init = LoraInit.Loftq, BaseQuantization = BaseQuantization.Fp4 }.Validate();
        var loftqIterations = () => new LoraOptions { Init = LoraInit.Loftq, LoftqIterations = 0 }.Validate();
        var loftqDora = () => new LoraOptions { Init = LoraInit.Loftq, UseDora = true }.Validate();
        var fullOnQuantized = () => new LoraTextClassifierOptions { ModelPath = "m", FineTuning = FineTuning.Full, Lora = new LoraOptions { BaseQuantization = BaseQuantization.Nf4 } }.Validate();

        doubleOnInt8.Should().Throw<ArgumentException>().WithMessage("*Nf4 or Fp4*");
        doubleAlone.Should().Throw<ArgumentException>().WithMessage("*Nf4 or Fp4*");
        loftqBits.Should().Throw<ArgumentException>().WithMessage("*4 (NF4) or 8*");
        loftqOnFp4.Should().Throw<ArgumentException>().WithMessage("*LoftqBits*");
        loftqIterations.Should().Throw<ArgumentException>().WithMessage("*LoftqIterations*");
        loftqDora.Should().Throw<ArgumentException>().WithMessage("*DoRA*");
        fullOnQuantized.Should().Throw<ArgumentException>().WithMessage("*frozen*");
    }

    [Theory]
    [InlineData(LoraInit.KaimingUniform)]
    [InlineData(LoraInit.Loftq)]
    public void A_LoRA_fit_on_an_NF4_base_learns_TREC_and_its_saved_model_quantizes_the_base_again_and_predicts_the_same(LoraInit init)
    {
        using var dir = new TempDir();
        var options = TrecFit.Options(SharedData.PretrainedBert,
            new LoraOptions { Rank = 8, Alpha = 16, BaseQuantization = BaseQuantization.Nf4, DoubleQuantization = true, Init = init });
        using var fit = TrecFit.Run(options, dir.Path);

        output.WriteLine($"TREC-6, 300 training questions, NF4 base with double quantization, {init}: accuracy {fit.Accuracy:P1} on 500 test questions (majority class 27.6%)");
        LoraInjector.LinearLayers(fit.Fitted.Model).Where(l => l.Key.Contains(".layer.")).Should().OnlyContain(l => l.Value.IsQuantized);
        fit.Accuracy.Should().BeGreaterThan(0.40, "the same fit on the fp32 base reaches well above the majority class; so must the NF4 one");
        LoraInjector.LinearLayers(fit.Loaded.Model).Where(l => l.Key.Contains(".layer.")).Should().OnlyContain(l => l.Value.IsQuantized, "the base is quantized again at load");
        fit.LoadedScores.Should().Equal(fit.Scores);
    }
}
