using Microsoft.ML;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Models.Kernels;
using Microsoft.ML.LoRA.Tests.MLNet;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Training;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.LoRA.Tests.Models;

/// <summary>Checkpointed layers give the same loss and gradients as stored activations, dropout included.</summary>
public class GradientCheckpointingTests(TinyBertFolder bert) : IClassFixture<TinyBertFolder>
{
    public static IEnumerable<object[]> Families => SharedData.Families.Select(f => new object[] { f });

    static (double Loss, Dictionary<string, float[]> Grads) Step(string family, bool checkpointing, bool lora, int batch = 4, int seq = 9,
        Microsoft.ML.LoRA.Models.Quantization.QuantizedBase? quantization = null)
    {
        lock (TorchRandomLock.Sync)
        {
            torch.manual_seed(3);
            var config = TransformerConfig.Load(Path.Combine(SharedData.Fixture(family), "config.json"));
            using var model = ModelFactory.Create(config, numLabels: 3, quantization);
            if (lora) LoraInjector.Apply(model, new LoraOptions { Rank = 4, Alpha = 8, Dropout = 0.1, TargetModules = new[] { "all-linear" } });
            model.UseGradientCheckpointing(checkpointing);
            model.train();
            using var scope = torch.NewDisposeScope();
            var g = new Generator(5);
            var ids = torch.randint(5, config.VocabSize, new long[] { batch, seq }, generator: g);
            var mask = torch.ones(batch, seq, ScalarType.Int64);
            mask[1, TensorIndex.Slice(6)] = torch.tensor(0L);
            var labels = torch.tensor(new long[] { 0, 1, 2, 1 }).repeat(batch / 4);
            torch.manual_seed(11);
            var loss = F.cross_entropy(model.forward(new ModelInput(ids, mask)), labels);
            loss.backward();
            var grads = model.named_parameters().Where(p => p.parameter.grad is not null)
                .ToDictionary(p => p.name, p => p.parameter.grad!.data<float>().ToArray());
            return (loss.item<float>(), grads);
        }
    }

    /// <summary>The checkpointed step's loss and every gradient equal the stored activations' step's.</summary>
    static void ShouldMatch((double Loss, Dictionary<string, float[]> Grads) recomputed, (double Loss, Dictionary<string, float[]> Grads) stored)
    {
        recomputed.Loss.Should().BeApproximately(stored.Loss, 1e-6);
        recomputed.Grads.Keys.Should().BeEquivalentTo(stored.Grads.Keys);
        foreach (var (name, grad) in stored.Grads)
            recomputed.Grads[name].Zip(grad, (a, b) => Math.Abs(a - b)).Max().Should().BeLessThan(1e-5f, name);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Lora_training_with_checkpointing_matches_stored_activations(string family)
    {
        var stored = Step(family, checkpointing: false, lora: true);
        var recomputed = Step(family, checkpointing: true, lora: true);

        ShouldMatch(recomputed, stored);
        stored.Grads.Keys.Should().Contain(k => k.Contains("layer.0") || k.Contains(".h.0."), "the first layer's adapters get gradients through the checkpoint");
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Over_a_quantized_base_checkpointed_layers_give_the_same_gradients_and_the_adapters_of_the_first_layer_get_them(string family)
    {
        var nf4 = new Microsoft.ML.LoRA.Models.Quantization.QuantizedBase(Microsoft.ML.LoRA.Models.Quantization.BaseQuantization.Nf4, DoubleQuantization: true);
        var stored = Step(family, checkpointing: false, lora: true, quantization: nf4);
        var recomputed = Step(family, checkpointing: true, lora: true, quantization: nf4);
        var dense = Step(family, checkpointing: false, lora: true);

        ShouldMatch(recomputed, stored);
        stored.Grads.Keys.Should().Contain(k => (k.Contains("layer.0") || k.Contains(".h.0.")) && k.Contains("lora_A"));
        stored.Loss.Should().NotBe(dense.Loss, "the base computes with NF4's rounded weights");
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Checkpointed_layers_whose_attention_recomputes_its_probabilities_give_the_same_gradients(string family)
    {
        // 520 examples x 4 heads x 64 x 64 floats = 32.5 MiB a layer: RecomputedAttention's size, inside the
        // checkpointed layers' recomputation too.
        const int batch = 520, seq = 64;
        using (var heads = torch.empty(batch, 4, seq, 1)) RecomputedAttention.Pays(heads, heads).Should().BeTrue();
        var stored = Step(family, checkpointing: false, lora: true, batch, seq);
        var recomputed = Step(family, checkpointing: true, lora: true, batch, seq);

        ShouldMatch(recomputed, stored);
    }

    [Fact]
    public void Full_fine_tuning_with_checkpointing_reaches_the_embeddings()
    {
        var stored = Step("bert", checkpointing: false, lora: false);
        var recomputed = Step("bert", checkpointing: true, lora: false);

        recomputed.Grads.Keys.Should().BeEquivalentTo(stored.Grads.Keys).And.Contain("bert.embeddings.word_embeddings.weight");
        foreach (var (name, grad) in stored.Grads)
            recomputed.Grads[name].Zip(grad, (a, b) => Math.Abs(a - b)).Max().Should().BeLessThan(1e-5f, name);
    }

    sealed class Row
    {
        public string Label { get; set; } = "";
        public string Text { get; set; } = "";
    }

    sealed class Scored
    {
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    [Fact]
    public void The_estimator_option_trains_the_same_model_as_without_it()
    {
        float[] Fit(bool checkpointing)
        {
            var ml = new MLContext(seed: 1);
            var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 24).Select(i => new Row { Label = i % 2 == 0 ? "ham" : "spam", Text = $"text {i} {(i % 2 == 0 ? "see you at lunch" : "claim your free prize")}" }));
            var options = new LoraTextClassifierOptions
            {
                ModelPath = bert.Path, Epochs = 2, BatchSize = 8, MaxSequenceLength = 24, LearningRate = 1e-2,
                Lora = new LoraOptions { Rank = 2, Alpha = 4, Dropout = 0.1 }, GradientCheckpointing = checkpointing,
            };
            var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(options)).Fit(data);
            using var lora = PipelineStages.LoraStage(model);
            return ml.Data.CreateEnumerable<Scored>(model.Transform(data), false).SelectMany(s => s.Score).ToArray();
        }

        var stored = Fit(checkpointing: false);
        var recomputed = Fit(checkpointing: true);

        new LoraTextClassifierOptions().GradientCheckpointing.Should().BeFalse();
        stored.Zip(recomputed, (a, b) => Math.Abs(a - b)).Max().Should().BeLessThan(1e-4f);
        stored.Distinct().Should().HaveCountGreaterThan(2, "training moved the scores away from one constant");
    }
}
