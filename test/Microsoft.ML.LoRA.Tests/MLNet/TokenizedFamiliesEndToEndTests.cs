using Microsoft.ML;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.MLNet;

/// <summary>
/// The families whose checkpoints bring their own tokenizer files (the LLaMA family's tokenizer.json without a pad
/// token, DeBERTa-v3's Unigram tokenizer.json) as a user meets them: text in through an ML.NET pipeline, trained,
/// scored, saved with the adapter and loaded again with the same probabilities.
/// </summary>
public class TokenizedFamiliesEndToEndTests
{
    public sealed class Row
    {
        public string Label { get; set; } = "";
        public string Text { get; set; } = "";
    }

    public sealed class Prediction
    {
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    /// <summary>Texts of the words both toy tokenizers know; the label is the first word, wherever the rest goes.</summary>
    static List<Row> Rows(int count, int seed)
    {
        var random = new Random(seed);
        string[] words = { "hello", "world" };
        return Enumerable.Range(0, count).Select(i =>
        {
            var first = words[i % 2];
            var rest = Enumerable.Range(0, random.Next(1, 5)).Select(_ => words[random.Next(2)]);
            return new Row { Label = first == "hello" ? "greeting" : "place", Text = string.Join(' ', rest.Prepend(first)) };
        }).ToList();
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("deberta-v2")]
    public void Text_trains_scores_and_survives_a_save_and_load(string family)
    {
        using var dir = new TempDir();
        var model = TinyCheckpoint.Create(family, Path.Combine(dir.Path, "base"), seed: 4);
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Rows(96, 1));
        var testRows = Rows(40, 2);
        var test = ml.Data.LoadFromEnumerable(testRows);
        var options = new LoraTextClassifierOptions
        {
            ModelPath = model, Epochs = 4, LearningRate = 5e-3, BatchSize = 8, MaxSequenceLength = 16, Seed = 3,
            Lora = new LoraOptions { Rank = 4, Alpha = 8, TargetModules = new[] { "all-linear" } },
        };
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(options));

        var fitted = pipeline.Fit(train);
        var scored = fitted.Transform(test);
        var metrics = ml.MulticlassClassification.Evaluate(scored);

        metrics.MicroAccuracy.Should().BeGreaterThan(0.9, "the first word decides the label (chance is 50%)");
        var path = Path.Combine(dir.Path, "model.zip");
        ml.Model.SaveWithLora(fitted, train.Schema, path);
        var loaded = ml.Model.LoadWithLora(path, out _);
        var before = ml.Data.CreateEnumerable<Prediction>(scored, reuseRowObject: false).ToList();
        var after = ml.Data.CreateEnumerable<Prediction>(loaded.Transform(test), reuseRowObject: false).ToList();
        for (int i = 0; i < before.Count; i++)
            after[i].Score.Should().BeEquivalentTo(before[i].Score, o => o.Using<float>(c => c.Subject.Should().BeApproximately(c.Expectation, 1e-5f)).WhenTypeIs<float>());
    }
}
