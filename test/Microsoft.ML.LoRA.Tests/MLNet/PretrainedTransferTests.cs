using Microsoft.ML;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Tests.Support;
using Xunit.Abstractions;

namespace Microsoft.ML.LoRA.Tests.MLNet;

/// <summary>
/// Pre-training carries over: the same LoRA fit on the genuinely pre-trained bert-tiny-mlm-en classifies TREC questions
/// far better than on a random-weight model of the same shape (which learns little beyond the majority class: a frozen
/// random base gives the adapters nothing to adapt).
/// </summary>
public class PretrainedTransferTests(ITestOutputHelper output)
{
    static double Accuracy(string model)
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TextData.Trec("train_5500.label", 300));
        var test = ml.Data.LoadFromEnumerable(TextData.Trec("TREC_10.label", 500));
        var options = TrecFit.Options(model);
        var fitted = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(options)).Fit(train);
        try { return ml.MulticlassClassification.Evaluate(fitted.Transform(test)).MicroAccuracy; }
        finally { PipelineStages.LoraStage(fitted).Dispose(); }
    }

    [Fact]
    public void LoRA_on_the_pretrained_base_beats_the_same_LoRA_on_a_random_base_of_the_same_shape()
    {
        using var dir = new TempDir();
        var random = TinyCheckpoint.RandomLike(SharedData.PretrainedBert, dir.File("random"), seed: 3);

        double pretrained = Accuracy(SharedData.PretrainedBert);
        double fromRandom = Accuracy(random);

        output.WriteLine($"TREC-6, 300 training questions, 500 test questions: pre-trained {pretrained:P1}, random {fromRandom:P1} (majority class 27.6%)");
        pretrained.Should().BeGreaterThan(fromRandom + 0.10, "pre-trained weights carry transfer that random ones lack");
        pretrained.Should().BeGreaterThan(0.40, "well above the 27.6% of always answering the majority class");
    }
}
