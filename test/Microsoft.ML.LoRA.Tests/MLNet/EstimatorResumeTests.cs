using Microsoft.ML;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Training;

namespace Microsoft.ML.LoRA.Tests.MLNet;

/// <summary>ML.NET users resume through the options: CheckpointDirectory, CheckpointEverySteps, ResumeFromCheckpoint.</summary>
public class EstimatorResumeTests(TinyBertFolder bert) : IClassFixture<TinyBertFolder>
{
    sealed class Row
    {
        public string Label { get; set; } = "";
        public string Text { get; set; } = "";
    }

    static List<Row> Rows(int n) =>
        Enumerable.Range(0, n).Select(i => new Row { Label = i % 3 == 0 ? "spam" : "ham", Text = i % 3 == 0 ? $"win a prize now {i}" : $"see you at lunch {i}" }).ToList();

    TrainingHistory Fit(string? checkpoints, bool resume, CancellationToken cancel = default, IProgress<TrainingProgress>? progress = null)
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(Rows(48))).Transform(ml.Data.LoadFromEnumerable(Rows(48)));
        var options = new LoraTextClassifierOptions
        {
            ModelPath = bert.Path, Epochs = 2, BatchSize = 8, MaxSequenceLength = 16, LearningRate = 5e-3, Seed = 11,
            Lora = new LoraOptions { Rank = 2, Alpha = 4, Dropout = 0.1 }, ValidationFraction = 0.25,
            CheckpointDirectory = checkpoints, CheckpointEverySteps = 2, ResumeFromCheckpoint = resume,
            CancellationToken = cancel, Progress = progress,
        };
        using var model = ml.MulticlassClassification.Trainers.LoraTextClassifier(options).Fit(data);
        return model.TrainingHistory!;
    }

    [Fact]
    public void A_cancelled_fit_resumed_through_the_options_ends_as_the_uninterrupted_fit()
    {
        using var dir = new TempDir();
        var whole = Fit(null, resume: false);
        using var cts = new CancellationTokenSource();

        var stopped = Fit(dir.Path, resume: false, cts.Token, new SynchronousProgress<TrainingProgress>(p => { if (p.Step == 7) cts.Cancel(); }));
        var resumed = Fit(dir.Path, resume: true);

        stopped.Cancelled.Should().BeTrue();
        resumed.StepLosses.Should().Equal(whole.StepLosses);
        resumed.Epochs.Select(e => (e.TrainLoss, e.ValidationLoss, e.ValidationAccuracy)).Should().Equal(whole.Epochs.Select(e => (e.TrainLoss, e.ValidationLoss, e.ValidationAccuracy)));
        var other = () => new LoraTextClassifierOptions { ModelPath = bert.Path, ResumeFromCheckpoint = true }.Validate();
        other.Should().Throw<ArgumentException>().WithMessage("*CheckpointDirectory*");
    }
}
