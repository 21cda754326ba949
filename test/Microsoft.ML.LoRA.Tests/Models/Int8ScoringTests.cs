using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Diagnostics;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.LoRA.Tests.MLNet;
using Microsoft.ML.LoRA.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.LoRA.Tests.Models;

/// <summary>
/// Precision = Int8: the fitted or loaded model's linear layers multiply in int8 (PyTorch's dynamic quantization),
/// only when scoring, close to fp32 on every family and on a trained classifier's accuracy.
/// </summary>
public class Int8ScoringTests(ITestOutputHelper output, TinyBertFolder bert) : IClassFixture<TinyBertFolder>
{
    static Tensor Input(ulong seed, params long[] shape)
    {
        using var generator = new Generator(seed);
        return torch.randn(shape, generator: generator);
    }

    static double RelativeError(Tensor actual, Tensor expected) => (actual - expected).norm().item<float>() / expected.norm().item<float>();

    static LoraLinear AdaptedLayer(bool fanInFanOut)
    {
        lock (Microsoft.ML.LoRA.TorchRandomLock.Sync)
        {
            torch.manual_seed(5);
            var layer = new LoraLinear(96, 64, fanInFanOut: fanInFanOut);
            layer.AttachAdapter(rank: 4, alpha: 8, dropout: 0.1, LoraScaling.AlphaOverRank, LoraInit.KaimingUniform);
            using (torch.no_grad())
            {
                layer.LoraB.normal_(0, 0.5);   // as if trained: the adapter changes the output
                layer.bias!.normal_(0, 1);
            }
            layer.eval();
            return layer;
        }
    }

    [Fact]
    public void An_int8_product_is_within_three_percent_of_fp32_over_any_leading_dimensions()
    {
        using var scope = torch.NewDisposeScope();
        var weight = Input(1, 64, 96) * 0.1;
        var bias = Input(2, 64);
        var x = Input(3, 3, 5, 96);

        using var int8 = Int8Weight.Pack(weight, bias);
        var y = int8.Multiply(x);
        var expected = F.linear(x, weight, bias);

        y.shape.Should().Equal(3, 5, 64);
        y.dtype.Should().Be(ScalarType.Float32);
        double error = RelativeError(y, expected);
        output.WriteLine($"relative error {error:E2}");
        error.Should().BeGreaterThan(1e-4, "the product really ran in int8");
        error.Should().BeLessThan(0.03);
        RelativeError(int8.Multiply(torch.zeros(2, 96)), bias.expand(2, 64)).Should().BeLessThan(1e-6, "the bias is added in fp32");
    }

    [Fact]
    public void Inputs_and_weights_at_the_ends_of_their_ranges_do_not_overflow_avx2s_sixteen_bit_pair_sums()
    {
        // AVX2 multiplies uint8 by int8 and adds pairs of products in int16 with saturation: 255·127·2 overflows it.
        using var scope = torch.NewDisposeScope();
        var weight = torch.ones(8, 64);
        weight[1] = -weight[1];
        var x = 0.9 + 0.1 * Input(6, 4, 64).sigmoid();

        using var int8 = Int8Weight.Pack(weight, null);

        double error = RelativeError(int8.Multiply(x), F.linear(x, weight));
        output.WriteLine($"relative error {error:E2}");
        error.Should().BeLessThan(0.02, "only rounding: a saturated sum is off by tens of percent");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_quantized_layer_multiplies_its_weight_and_adapter_in_int8_only_in_eval_mode_without_autograd(bool fanInFanOut)
    {
        using var scope = torch.NewDisposeScope();
        using var layer = AdaptedLayer(fanInFanOut);
        var x = Input(4, 6, 96);
        var fp32 = layer.forward(x).detach();
        Tensor withoutAdapter;
        using (torch.no_grad())
        {
            layer.AdapterEnabled = false;
            withoutAdapter = layer.forward(x);
            layer.AdapterEnabled = true;
        }

        layer.QuantizeToInt8();
        Tensor int8;
        using (torch.no_grad()) int8 = layer.forward(x);
        var withAutograd = layer.forward(x);

        layer.IsInt8.Should().BeTrue();
        RelativeError(int8, fp32).Should().BeInRange(1e-4, 0.03, "int8 rounding, with the adapter's update included");
        RelativeError(withoutAdapter, fp32).Should().BeGreaterThan(0.05, "the adapter's update is larger than int8's rounding, so the check above sees it");
        RelativeError(withAutograd, fp32).Should().BeLessThan(1e-6, "a product autograd follows stays fp32");
    }

    [Fact]
    public void Training_mode_merging_and_adapter_changes_drop_the_int8_copy()
    {
        using var layer = AdaptedLayer(fanInFanOut: false);
        var changes = new (string Name, Action Change)[]
        {
            ("train()", () => layer.train()),
            ("Merge()", layer.Merge),
            ("Unmerge()", layer.Unmerge),
            ("AdapterEnabled = false", () => layer.AdapterEnabled = false),
            ("SetScaling", () => layer.SetScaling(4, 1.0)),
        };
        foreach (var (name, change) in changes)
        {
            layer.eval();
            layer.QuantizeToInt8();
            change();
            layer.IsInt8.Should().BeFalse(name);
        }
        layer.eval();
        layer.IsInt8.Should().BeFalse("eval() alone does not quantize");
    }

    [Fact]
    public void Switching_a_whole_quantized_model_to_training_mode_drops_every_int8_copy()
    {
        using var model = PretrainedModel.Load(SharedData.Fixture("distilbert"));
        model.eval();
        model.QuantizeToInt8();
        LoraInjector.LinearLayers(model).Values.Should().OnlyContain(l => l.IsInt8);

        model.train();

        LoraInjector.LinearLayers(model).Values.Should().OnlyContain(l => !l.IsInt8, "a model being trained never multiplies by a stale int8 copy");
    }

    [Theory]
    [InlineData("bert")]
    [InlineData("distilbert")]
    [InlineData("roberta")]
    [InlineData("gpt2")]
    public void Int8_scoring_keeps_each_familys_fixture_logits_close_to_the_reference(string family)
    {
        var dir = SharedData.Fixture(family);
        var cases = LogitsCases.Load(Path.Combine(dir, "cases.json"));
        using var model = PretrainedModel.Load(dir);
        PeftAdapter.Load(model, Path.Combine(dir, "adapter"));
        var reference = cases.LogitsWithAdapter!;

        model.UseForScoring(ComputePrecision.Int8);
        var int8 = cases.Run(model);
        model.UseForScoring(ComputePrecision.Float32);
        var fp32 = cases.Run(model);

        double spread = LogitSpread.Of(reference);
        double moved = LogitsCases.MaxAbsDifference(int8, reference);
        output.WriteLine($"{family}: int8 max |diff| {moved:E2} = {moved / spread:P1} of the logits' spread {spread:E2}");
        moved.Should().BeGreaterThan(LogitsCases.MaxAbsDifference(fp32, reference), "the products really ran in int8");
        // These random models' logits hardly differ between examples (spread 0.02-0.3), so int8's rounding noise is a
        // larger share of their spread than on a trained model; a wrong layout or a dropped bias is many times larger.
        moved.Should().BeLessThan(0.2 * spread);
    }

    public sealed class Prediction
    {
        public string PredictedLabel { get; set; } = "";
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    LoraTextClassifierOptions SpamOptions(ComputePrecision precision) => new()
    {
        ModelPath = bert.Path, Epochs = 4, LearningRate = 5e-3, BatchSize = 16, MaxSequenceLength = 64, Seed = 3,
        Lora = new LoraOptions { Rank = 8, Alpha = 16, TargetModules = new[] { "all-linear" } }, Precision = precision,
    };

    [Fact]
    public void An_int8_classifier_trains_as_fp32_scores_as_accurately_and_keeps_int8_when_saved_and_loaded()
    {
        using var dir = new TempDir();
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TextData.Balanced(TextData.SmsSpam(0, 3000), 200));
        var test = ml.Data.LoadFromEnumerable(TextData.Balanced(TextData.SmsSpam(3000, 2000), 150));
        ITransformer Fit(ComputePrecision precision) => ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(SpamOptions(precision)))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel")).Fit(train);
        List<Prediction> Predict(ITransformer model) => ml.Data.CreateEnumerable<Prediction>(model.Transform(test), reuseRowObject: false).ToList();
        double Accuracy(ITransformer model) => ml.MulticlassClassification.Evaluate(model.Transform(test)).MicroAccuracy;

        var fp32Model = Fit(ComputePrecision.Float32);
        var int8Model = Fit(ComputePrecision.Int8);
        using var fp32Stage = PipelineStages.LoraStage(fp32Model);
        using var int8Stage = PipelineStages.LoraStage(int8Model);
        var fp32 = Predict(fp32Model);
        var int8 = Predict(int8Model);
        double fp32Accuracy = Accuracy(fp32Model), int8Accuracy = Accuracy(int8Model);
        double same = fp32.Zip(int8).Count(p => p.First.PredictedLabel == p.Second.PredictedLabel) / (double)fp32.Count;
        output.WriteLine($"accuracy fp32 {fp32Accuracy:P1}, int8 {int8Accuracy:P1}; same prediction {same:P1} of {fp32.Count}");

        int8Stage.TrainingHistory!.Epochs.Select(e => e.TrainLoss).Should().Equal(fp32Stage.TrainingHistory!.Epochs.Select(e => e.TrainLoss), "Int8 trains in fp32");
        LoraInjector.LinearLayers(int8Stage.Model).Values.Should().OnlyContain(l => l.IsInt8);
        LoraInjector.LinearLayers(fp32Stage.Model).Values.Should().OnlyContain(l => !l.IsInt8);
        fp32Accuracy.Should().BeGreaterThan(0.8, "spam vs ham is learnable, so the comparison means something");
        int8Accuracy.Should().BeGreaterThan(fp32Accuracy - 0.02);
        same.Should().BeGreaterThan(0.95);
        int8.Zip(fp32).Should().Contain(p => p.First.Score[0] != p.Second.Score[0], "the int8 model's scores are its own");

        var int8Path = dir.File("int8.zip");
        var fp32Path = dir.File("fp32.zip");
        ml.Model.SaveWithLora(int8Model, train.Schema, int8Path);
        ml.Model.SaveWithLora(fp32Model, train.Schema, fp32Path);
        var loaded = ml.Model.LoadWithLora(int8Path, out _);
        var fp32LoadedAsInt8 = ml.Model.LoadWithLora(fp32Path, out _, new LoraLoadOptions { ScoringPrecision = ComputePrecision.Int8 });
        using var loadedStage = PipelineStages.LoraStage(loaded);
        using var overriddenStage = PipelineStages.LoraStage(fp32LoadedAsInt8);

        loadedStage.Info.Precision.Should().Be(ComputePrecision.Int8, "the manifest carries the precision");
        overriddenStage.Info.Precision.Should().Be(ComputePrecision.Int8);
        Predict(loaded).SelectMany(p => p.Score).Should().Equal(int8.SelectMany(p => p.Score), "the same weights round to the same int8 copy");
        Predict(fp32LoadedAsInt8).SelectMany(p => p.Score).Should().Equal(int8.SelectMany(p => p.Score), "an fp32-trained model loaded for int8 scoring is the int8 model");
    }

    [Fact]
    public void Int8_means_int8_scoring_exactly_where_libtorch_has_the_kernels_and_never_bf16()
    {
        ComputePrecision.Int8.UsesInt8().Should().Be(Int8Scoring.IsAvailable);
        ComputePrecision.Int8.UsesBFloat16().Should().BeFalse("Int8 trains in fp32");
        ComputePrecision.Float32.UsesInt8().Should().BeFalse();
        ComputePrecision.BFloat16.UsesInt8().Should().BeFalse();
        if (System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.X64)
            Int8Scoring.IsAvailable.Should().BeTrue("x86-64 libtorch builds carry FBGEMM");
    }
}
