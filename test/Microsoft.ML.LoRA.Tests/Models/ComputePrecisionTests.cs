using Microsoft.ML;
using Microsoft.ML.LoRA.Diagnostics;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.LoRA.Tests.MLNet;
using Microsoft.ML.LoRA.Tests.Support;
using TorchSharp;

namespace Microsoft.ML.LoRA.Tests.Models;

/// <summary>The Precision option: bf16 products in training and scoring, kept with the saved model, at a small logit cost.</summary>
public class ComputePrecisionTests(TinyBertFolder bert) : IClassFixture<TinyBertFolder>
{
    sealed class Row
    {
        public string Label { get; set; } = "";
        public string Text { get; set; } = "";
    }

    sealed class Scored
    {
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    static IEnumerable<torch.ScalarType?> ComputeTypes(SequenceClassifier model) =>
        LoraInjector.LinearLayers(model).Values.Select(l => l.ComputeDtype).Distinct();

    LoraTextClassifierOptions Options(ComputePrecision precision) => new()
    {
        ModelPath = bert.Path, Epochs = 1, BatchSize = 8, MaxSequenceLength = 24, LearningRate = 1e-3,
        Lora = new LoraOptions { Rank = 2, Alpha = 4 }, Precision = precision,
    };

    static IDataView Data(MLContext ml) => ml.Data.LoadFromEnumerable(
        Enumerable.Range(0, 16).Select(i => new Row { Label = i % 2 == 0 ? "ham" : "spam", Text = $"message {i} says {(i % 2 == 0 ? "hello friend" : "win a prize now")}" }));

    [Fact]
    public void Float32_is_the_default_and_leaves_every_product_in_the_weights_type()
    {
        new LoraTextClassifierOptions().Precision.Should().Be(ComputePrecision.Float32);
        var ml = new MLContext(seed: 1);
        var data = Data(ml);
        var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(Options(ComputePrecision.Float32))).Fit(data);
        using var lora = PipelineStages.LoraStage(model);

        ComputeTypes(lora.Model).Should().Equal(new torch.ScalarType?[] { null });
    }

    [Fact]
    public void A_bf16_model_trains_and_scores_in_bf16_and_keeps_it_when_saved_and_loaded()
    {
        using var dir = new TempDir();
        var ml = new MLContext(seed: 1);
        var data = Data(ml);
        var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(Options(ComputePrecision.BFloat16))).Fit(data);
        using var lora = PipelineStages.LoraStage(model);
        var path = dir.File("bf16.zip");

        ml.Model.SaveWithLora(model, data.Schema, path);
        var loaded = ml.Model.LoadWithLora(path, out _);
        using var loadedLora = PipelineStages.LoraStage(loaded);

        lora.Info.Precision.Should().Be(ComputePrecision.BFloat16);
        ComputeTypes(lora.Model).Should().Equal(new torch.ScalarType?[] { torch.ScalarType.BFloat16 });
        lora.TrainingHistory!.Epochs.Should().OnlyContain(e => double.IsFinite(e.TrainLoss));
        loadedLora.Info.Precision.Should().Be(ComputePrecision.BFloat16, "the manifest carries the precision");
        ComputeTypes(loadedLora.Model).Should().Equal(new torch.ScalarType?[] { torch.ScalarType.BFloat16 });
        var expected = ml.Data.CreateEnumerable<Scored>(model.Transform(data), false).SelectMany(s => s.Score);
        var actual = ml.Data.CreateEnumerable<Scored>(loaded.Transform(data), false).SelectMany(s => s.Score);
        actual.Should().Equal(expected, "the loaded model multiplies in bf16 exactly as the trained one did");
    }

    [Fact]
    public void Auto_means_bf16_exactly_where_the_cpu_multiplies_bf16_natively()
    {
        ComputePrecision.Auto.UsesBFloat16().Should().Be(MixedPrecision.IsAccelerated);
        ComputePrecision.BFloat16.UsesBFloat16().Should().BeTrue();
        ComputePrecision.Float32.UsesBFloat16().Should().BeFalse();
    }

    [Fact]
    public void An_undefined_precision_is_refused_by_name()
    {
        var options = Options((ComputePrecision)7);

        var act = () => options.Validate();

        act.Should().Throw<ArgumentException>().Which.ParamName.Should().Be("Precision");
    }

    [Fact]
    public void Bf16_products_move_fixture_logits_by_a_few_percent_of_their_spread_at_most()
    {
        var dir = SharedData.Fixture("bert");
        var cases = LogitsCases.Load(Path.Combine(dir, "cases.json"));
        using var model = PretrainedModel.Load(dir);
        PeftAdapter.Load(model, Path.Combine(dir, "adapter"));
        var fp32 = cases.Run(model);

        model.Use(ComputePrecision.BFloat16);
        var bf16 = cases.Run(model);

        double spread = LogitSpread.Of(fp32);
        double moved = LogitsCases.MaxAbsDifference(bf16, fp32);
        moved.Should().BeGreaterThan(0, "the products really ran in bf16");
        moved.Should().BeLessThan(0.05 * spread);
    }
}
