using Microsoft.ML;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.LoRA.Tests.Support;
using TorchSharp;

namespace Microsoft.ML.LoRA.Tests.Lora;

/// <summary>
/// A LoRA fit can start from an existing adapter (InitialAdapterPath, CLI --init-adapter): its factors are the starting
/// point and train on; layers it brings with another rank are saved with PEFT's rank_pattern and load back identically.
/// </summary>
public class InitialAdapterTests
{
    public sealed class Scored
    {
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    static (ITransformer Model, IDataView Train, IDataView Test, MLContext Ml) Fit(string baseFolder, LoraOptions lora, double learningRate, string? initial = null)
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TextData.Balanced(TextData.SmsSpam(0, 2000), 16));
        var test = ml.Data.LoadFromEnumerable(TextData.Balanced(TextData.SmsSpam(3000, 2000), 8));
        var options = new LoraTextClassifierOptions
        {
            ModelPath = baseFolder, Epochs = 1, BatchSize = 8, MaxSequenceLength = 24, LearningRate = learningRate, Lora = lora,
            InitialAdapterPath = initial, Seed = 9,
        };
        var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(options)).Fit(train);
        return (model, train, test, ml);
    }

    static torch.Tensor Factor(ITransformer model, string name) =>
        PipelineStages.LoraStage(model).Model.named_parameters().Single(p => p.name == name).parameter;

    [Fact]
    public void The_fit_starts_from_the_adapters_factors_and_layers_it_brings_with_another_rank_round_trip()
    {
        using var dir = new TempDir();
        var bert = TinyCheckpoint.Bert(dir.File("bert"), hidden: 32, seed: 5);
        var (source, _, _, _) = Fit(bert, new LoraOptions { Rank = 4, Alpha = 4, TargetModules = new[] { "key" } }, learningRate: 5e-2);
        PipelineStages.LoraStage(source).SaveAdapter(dir.File("adapter"));
        const string keyA = "bert.encoder.layer.0.attention.self.key.lora_A.weight";

        // a rate so small that the factors barely move: what the fit ends with is what it started from
        var (continued, train, test, ml) = Fit(bert, new LoraOptions { Rank = 8, Alpha = 16, LoraQuery = true, LoraValue = true }, learningRate: 1e-12, initial: dir.File("adapter"));

        Factor(continued, keyA).allclose(Factor(source, keyA), rtol: 0, atol: 1e-6).Should().BeTrue("the key layers start from the adapter's factors");
        var lora = PipelineStages.LoraStage(continued);
        lora.Model.named_parameters().Where(p => LoraLinear.IsAdapterParameter(p.name)).Should().OnlyContain(p => p.parameter.requires_grad);
        LoraInjector.LinearLayers(lora.Model).Where(l => l.Value.HasAdapter).Select(l => l.Key.Split('.').Last()).Distinct()
            .Should().BeEquivalentTo("query", "value", "key");

        var path = dir.File("model.zip");
        ml.Model.SaveWithLora(continued, train.Schema, path);
        var loaded = ml.Model.LoadWithLora(path, out _);
        float[] Scores(ITransformer m) => ml.Data.CreateEnumerable<Scored>(m.Transform(test), reuseRowObject: false).SelectMany(s => s.Score).ToArray();
        Scores(loaded).Should().Equal(Scores(continued), "rank 4 key layers beside rank 8 query/value layers are stored with rank_pattern");
        PipelineStages.LoraStage(loaded).Dispose();
        lora.Dispose();
        PipelineStages.LoraStage(source).Dispose();
    }

    [Fact]
    public void An_initial_adapter_of_another_rank_on_a_targeted_layer_is_refused_with_the_rank_to_use()
    {
        using var dir = new TempDir();
        var bert = TinyCheckpoint.Bert(dir.File("bert"), hidden: 32, seed: 5);
        var (source, _, _, _) = Fit(bert, new LoraOptions { Rank = 4, Alpha = 4 }, learningRate: 1e-3);
        PipelineStages.LoraStage(source).SaveAdapter(dir.File("adapter"));
        PipelineStages.LoraStage(source).Dispose();

        var act = () => Fit(bert, new LoraOptions { Rank = 8, Alpha = 16 }, learningRate: 1e-3, initial: dir.File("adapter"));

        act.Should().Throw<Microsoft.ML.LoRA.Checkpoints.CheckpointFormatException>().WithMessage("*rank-8 adapter*holds rank 4*--rank) to 4*");
    }

    [Fact]
    public void An_initial_adapter_needs_the_LoRA_method_and_an_existing_folder()
    {
        var withHead = new LoraTextClassifierOptions { ModelPath = "m", FineTuning = FineTuning.HeadOnly, InitialAdapterPath = "." };
        var missing = new LoraTextClassifierOptions { ModelPath = "m", InitialAdapterPath = "/no/such/adapter" };

        withHead.Invoking(o => o.Validate()).Should().Throw<ArgumentException>().WithMessage("*needs FineTuning.Lora*");
        missing.Invoking(o => o.Validate()).Should().Throw<DirectoryNotFoundException>().WithMessage("*/no/such/adapter*");
    }
}
