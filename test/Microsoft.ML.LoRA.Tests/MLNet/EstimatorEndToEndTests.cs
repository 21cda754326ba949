using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Training;
using Xunit.Abstractions;

namespace Microsoft.ML.LoRA.Tests.MLNet;

/// <summary>The estimator in real ML.NET pipelines on real text: fit, evaluate with ML.NET's evaluators, predict.</summary>
public class EstimatorEndToEndTests(ITestOutputHelper output, TinyBertFolder bert) : IClassFixture<TinyBertFolder>
{
    static LoraTextClassifierOptions Learnable(string model) => new()
    {
        ModelPath = model, Epochs = 4, LearningRate = 5e-3, BatchSize = 16, MaxSequenceLength = 64, Seed = 3,
        Lora = new LoraOptions { Rank = 8, Alpha = 16, TargetModules = new[] { "all-linear" } },
    };

    public sealed class Prediction
    {
        public string PredictedLabel { get; set; } = "";
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    [Fact]
    public void Multiclass_pipeline_learns_sms_spam_and_evaluates_with_mlnet()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TextData.Balanced(TextData.SmsSpam(0, 3000), 200));
        var testRows = TextData.Balanced(TextData.SmsSpam(3000, 2000), 100);
        var test = ml.Data.LoadFromEnumerable(testRows);
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(Learnable(bert.Path)))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));

        var model = pipeline.Fit(train);
        var scored = model.Transform(test);
        var metrics = ml.MulticlassClassification.Evaluate(scored, predictedLabelColumnName: "PredictedLabel");

        var history = model.OfType<LoraTextClassificationTransformer>().Single().TrainingHistory!;
        output.WriteLine($"macro accuracy {metrics.MacroAccuracy:P1}, log-loss {metrics.LogLoss:F3}; train losses {string.Join(", ", history.Epochs.Select(e => e.TrainLoss.ToString("F3")))}");
        history.Epochs.Last().TrainLoss.Should().BeLessThan(history.Epochs.First().TrainLoss * 0.8, "the loss goes down");
        metrics.MacroAccuracy.Should().BeGreaterThan(0.8, "spam vs ham is learnable (chance is 50% on this balanced sample)");

        using var engine = ml.Model.CreatePredictionEngine<TextData.LabeledText, Prediction>(model);
        var fromTransform = ml.Data.CreateEnumerable<Prediction>(scored, reuseRowObject: false).Take(20).ToList();
        for (int i = 0; i < 20; i++)
        {
            var single = engine.Predict(testRows[i]);
            single.PredictedLabel.Should().Be(fromTransform[i].PredictedLabel);
            single.PredictedLabel.Should().BeOneOf("ham", "spam");
            single.Score.Should().HaveCount(2);
            single.Score.Sum().Should().BeApproximately(1f, 1e-4f);
            single.Score.Should().BeEquivalentTo(fromTransform[i].Score, o => o.Using<float>(c => c.Subject.Should().BeApproximately(c.Expectation, 1e-5f)).WhenTypeIs<float>());
        }
    }

    [Fact]
    public void Binary_variant_gives_columns_binary_evaluate_accepts()
    {
        var ml = new MLContext(seed: 1);
        TextData.BinaryText ToBinary(TextData.LabeledText r) => new() { Label = r.Label == "spam", Text = r.Text };
        var train = ml.Data.LoadFromEnumerable(TextData.Balanced(TextData.SmsSpam(0, 3000), 200).Select(ToBinary));
        var test = ml.Data.LoadFromEnumerable(TextData.Balanced(TextData.SmsSpam(3000, 2000), 100).Select(ToBinary));

        var model = ml.BinaryClassification.Trainers.LoraTextClassifier(Learnable(bert.Path)).Fit(train);
        var metrics = ml.BinaryClassification.Evaluate(model.Transform(test));

        output.WriteLine($"AUC {metrics.AreaUnderRocCurve:F3}, accuracy {metrics.Accuracy:P1}, F1 {metrics.F1Score:F3}");
        metrics.AreaUnderRocCurve.Should().BeGreaterThan(0.85);
        metrics.Accuracy.Should().BeGreaterThan(0.75);
    }
}

/// <summary>One tiny BERT checkpoint (random weights, real bert-base-uncased vocabulary) shared by a test class.</summary>
public sealed class TinyBertFolder : IDisposable
{
    readonly TempDir _dir = new();
    public string Path { get; }
    public TinyBertFolder() => Path = TinyCheckpoint.Bert(System.IO.Path.Combine(_dir.Path, "bert"), hidden: 64, layers: 2, heads: 4);
    public void Dispose() => _dir.Dispose();
}
