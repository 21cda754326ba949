using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Models.Quantization;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.LoRA.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tests.Lora;

/// <summary>
/// A bf16 or fp16 checkpoint keeps its frozen linear weights in their own 16 bits: half of fp32's memory, and the
/// same products, since widening such a weight to fp32 is exact.
/// </summary>
public class SixteenBitBaseTests(ITestOutputHelper output)
{
    /// <summary>A copy of the pre-trained BERT in <paramref name="folder"/> whose every floating tensor is stored as <paramref name="type"/>.</summary>
    static string StoredAs(ScalarType type, string folder)
    {
        Directory.CreateDirectory(folder);
        foreach (var file in Directory.GetFiles(SharedData.PretrainedBert).Where(f => !f.EndsWith(".safetensors", StringComparison.Ordinal)))
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        using var scope = torch.NewDisposeScope();
        using var source = CheckpointFolder.Open(SharedData.PretrainedBert).OpenWeights();
        var tensors = source.Names.ToDictionary(n => n, n => source.ReadFloat32(n).to_type(type));
        SafeTensorsWriter.Save(Path.Combine(folder, "model.safetensors"), tensors);
        return folder;
    }

    static SequenceClassifier Load(string folder, QuantizedBase? storage)
    {
        lock (TorchRandomLock.Sync)   // the pooler and head the checkpoint lacks are drawn alike for both loads
        {
            torch.manual_seed(4);
            return PretrainedModel.Load(folder, numLabels: 3, quantization: storage);
        }
    }

    [Fact]
    public void A_16_bit_weight_keeps_the_rounded_values_in_2_bytes_each_and_widens_them_exactly()
    {
        using var scope = torch.NewDisposeScope();
        Tensor w;
        lock (TorchRandomLock.Sync)   // never reseed libtorch's generator under a concurrent seeded fit
        {
            torch.manual_seed(2);
            w = torch.randn(48, 80);
        }
        foreach (var (kind, type) in new[] { (BaseQuantization.BFloat16, ScalarType.BFloat16), (BaseQuantization.Float16, ScalarType.Float16) })
        {
            using var kept = QuantizedWeight.Quantize(w, kind);
            var expected = w.to_type(type).to_type(ScalarType.Float32);
            var into = torch.empty(48, 80);
            kept.DequantizeInto(into);

            kept.StorageBytes.Should().Be(48 * 80 * 2);
            kept.BitsPerWeight.Should().Be(16);
            kept.Dequantize().allclose(expected, 0, 0).Should().BeTrue($"{kind} rounds each weight to the nearest {type} and widens it exactly");
            into.allclose(expected, 0, 0).Should().BeTrue();
        }

        var stored = w.to_type(ScalarType.BFloat16);
        using var own = QuantizedWeight.Quantize(stored, BaseQuantization.BFloat16);
        var before = stored.to_type(ScalarType.Float32);
        stored.mul_(2);
        own.Dequantize().allclose(before, 0, 0).Should().BeTrue("a weight already in bf16 is copied, not shared with the caller");

        var doubled = () => QuantizedWeight.Quantize(w, BaseQuantization.BFloat16, doubleQuantization: true);
        doubled.Should().Throw<ArgumentException>().WithMessage("*NF4 and FP4*");
    }

    [Fact]
    public void A_fit_keeps_the_checkpoints_own_16_bits_only_where_it_leaves_the_base_weights_as_stored()
    {
        using var dir = new TempDir();
        var bf16 = CheckpointFolder.Open(StoredAs(ScalarType.BFloat16, dir.File("bf16")));
        var fp16 = CheckpointFolder.Open(StoredAs(ScalarType.Float16, dir.File("fp16")));
        var fp32 = CheckpointFolder.Open(SharedData.PretrainedBert);
        var lora = new LoraOptions();

        lora.BaseStorageWhileLoading(bf16, FineTuning.Lora).Should().Be(new QuantizedBase(BaseQuantization.BFloat16));
        lora.BaseStorageWhileLoading(bf16, FineTuning.HeadOnly).Should().Be(new QuantizedBase(BaseQuantization.BFloat16));
        lora.BaseStorageWhileLoading(fp16, FineTuning.Lora).Should().Be(new QuantizedBase(BaseQuantization.Float16));
        lora.BaseStorageWhileLoading(fp32, FineTuning.Lora).Should().BeNull("an fp32 checkpoint stays fp32 unless a quantization is chosen");
        lora.BaseStorageWhileLoading(bf16, FineTuning.Full).Should().BeNull("full fine-tuning trains the weights in fp32");
        lora.BaseStorageWhileLoading(bf16, FineTuning.LastLayers(1)).Should().BeNull();
        new LoraOptions { Init = LoraInit.Pissa }.BaseStorageWhileLoading(bf16, FineTuning.Lora).Should().BeNull("PiSSA rewrites the base weight");
        new LoraOptions { ModulesToSave = new List<string> { "classifier" } }.BaseStorageWhileLoading(bf16, FineTuning.Lora).Should().BeNull();
        new LoraOptions { BaseQuantization = BaseQuantization.Nf4 }.BaseStorageWhileLoading(bf16, FineTuning.Lora)
            .Should().Be(new QuantizedBase(BaseQuantization.Nf4), "a chosen quantization wins");
    }

    [Fact]
    public void A_bf16_checkpoint_kept_in_16_bits_computes_the_logits_and_adapter_gradients_of_its_fp32_widening_in_half_the_bytes()
    {
        using var dir = new TempDir();
        var folder = StoredAs(ScalarType.BFloat16, dir.File("bf16"));
        using var kept = Load(folder, QuantizedBase.StoredSixteenBit(CheckpointFolder.Open(folder)));
        using var widened = Load(folder, null);
        foreach (var model in new[] { kept, widened })
        {
            lock (TorchRandomLock.Sync)
            {
                torch.manual_seed(9);
                LoraInjector.Apply(model, new LoraOptions { LoraQuery = true, LoraValue = true });
            }
            model.eval();
        }
        using var scope = torch.NewDisposeScope();
        Tensor ids;
        lock (TorchRandomLock.Sync) ids = torch.randint(1000, 5000, new long[] { 3, 12 });
        var mask = torch.ones(3, 12, ScalarType.Int64);

        var keptLogits = kept.forward(new ModelInput(ids, mask));
        var widenedLogits = widened.forward(new ModelInput(ids, mask));
        keptLogits.sum().backward();
        widenedLogits.sum().backward();

        var layers = LoraInjector.LinearLayers(kept).Where(l => l.Key.Contains(".layer.")).ToList();
        layers.Should().OnlyContain(l => l.Value.BaseQuantization == BaseQuantization.BFloat16);
        LoraInjector.LinearLayers(widened).Where(l => l.Key.Contains(".layer.")).Should().OnlyContain(l => !l.Value.IsQuantized);
        layers.Sum(l => l.Value.BaseWeightBytes).Should().Be(layers.Sum(l => l.Value.InFeatures * l.Value.OutFeatures * 2));
        keptLogits.sub(widenedLogits).abs().max().item<float>().Should().BeLessThan(1e-5f);
        // B starts at zero, so B's gradient is the one that carries the base's activations back.
        var keptB = kept.get_parameter("bert.encoder.layer.0.attention.self.query.lora_B.weight")!.grad!;
        var widenedB = widened.get_parameter("bert.encoder.layer.0.attention.self.query.lora_B.weight")!.grad!;
        widenedB.abs().max().item<float>().Should().BeGreaterThan(0);
        keptB.sub(widenedB).abs().max().item<float>().Should().BeLessThan(1e-5f * Math.Max(1f, widenedB.abs().max().item<float>()));
    }

    [Fact]
    public void A_LoRA_fit_on_a_bf16_checkpoint_learns_TREC_in_16_bits_and_its_saved_model_loads_them_so_again_and_predicts_the_same()
    {
        using var dir = new TempDir();
        var folder = StoredAs(ScalarType.BFloat16, dir.File("bf16"));
        using var fit = TrecFit.Run(TrecFit.Options(folder), dir.Path);

        output.WriteLine($"TREC-6, 300 training questions, bf16 checkpoint kept in 16 bits: accuracy {fit.Accuracy:P1} on 500 test questions (majority class 27.6%)");
        LoraInjector.LinearLayers(fit.Fitted.Model).Where(l => l.Key.Contains(".layer.")).Should().OnlyContain(l => l.Value.BaseQuantization == BaseQuantization.BFloat16);
        fit.Accuracy.Should().BeGreaterThan(0.40, "the same fit on the fp32 checkpoint reaches well above the majority class");
        LoraInjector.LinearLayers(fit.Loaded.Model).Where(l => l.Key.Contains(".layer.")).Should().OnlyContain(l => l.Value.BaseQuantization == BaseQuantization.BFloat16);
        fit.LoadedScores.Should().Equal(fit.Scores);
    }
}
