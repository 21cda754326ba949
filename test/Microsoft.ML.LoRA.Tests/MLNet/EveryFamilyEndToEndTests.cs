using Microsoft.ML;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.MLNet;

/// <summary>Every family fits, saves and loads with identical predictions, and exports an adapter PEFT layout can reload.</summary>
public class EveryFamilyEndToEndTests
{
    sealed class Scored
    {
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    [Theory]
    [InlineData("bert")]
    [InlineData("distilbert")]
    [InlineData("roberta")]
    [InlineData("gpt2")]
    public void A_family_fits_saves_and_loads_with_identical_predictions(string family)
    {
        using var dir = new TempDir();
        var baseFolder = TinyCheckpoint.Create(family, Path.Combine(dir.Path, family), seed: 5);
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TextData.Balanced(TextData.SmsSpam(0, 1000), 24));
        var test = ml.Data.LoadFromEnumerable(TextData.Balanced(TextData.SmsSpam(3000, 1000), 8));
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(new LoraTextClassifierOptions
            {
                ModelPath = baseFolder, Epochs = 1, BatchSize = 8, MaxSequenceLength = 64, LearningRate = 1e-3,
                Lora = new LoraOptions { Rank = 4, Alpha = 8, LoraQuery = true, LoraValue = true, LoraMlp = true },
            }));

        var model = pipeline.Fit(train);
        var path = Path.Combine(dir.Path, "model.zip");
        ml.Model.SaveWithLora(model, train.Schema, path);
        var loaded = ml.Model.LoadWithLora(path, out _);

        var expected = ml.Data.CreateEnumerable<Scored>(model.Transform(test), false).SelectMany(s => s.Score).ToList();
        var actual = ml.Data.CreateEnumerable<Scored>(loaded.Transform(test), false).SelectMany(s => s.Score).ToList();
        expected.Should().HaveCount(32).And.OnlyContain(v => float.IsFinite(v));
        actual.Should().Equal(expected);

        var adapter = Path.Combine(dir.Path, "peft");
        LoraModelFile.ExportAdapter(path, adapter);
        using var reloaded = PretrainedModel.Load(baseFolder, numLabels: 2);
        var info = PeftAdapter.Load(reloaded, adapter);
        info.AdaptedModules.Should().HaveCount(family == "gpt2" ? 2 * 3 : 2 * 4, "query+value (GPT-2: fused c_attn) and both MLP layers in 2 layers");
        info.SavedTensors.Should().NotBeEmpty("the trained head travels with the adapter");
    }
}
