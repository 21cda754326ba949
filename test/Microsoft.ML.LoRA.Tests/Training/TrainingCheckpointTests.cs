using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Training;
using TorchSharp;

namespace Microsoft.ML.LoRA.Tests.Training;

/// <summary>
/// A fit stopped part-way (cancelled, or killed right after a checkpoint) and resumed from its training checkpoint ends
/// exactly where the uninterrupted fit ends: the same step losses, epoch history and trainable weights, bit for bit.
/// </summary>
public class TrainingCheckpointTests
{
    static readonly List<LabeledExample> Train = SyntheticTask.Make(96, seed: 3);
    static readonly List<LabeledExample> Validation = SyntheticTask.Make(32, seed: 4);

    sealed record Outcome(TrainingHistory History, Dictionary<string, float[]> Weights);

    static TrainingSettings Settings(string? checkpoints, int accumulation = 1, bool bucketing = false, int? every = 4) => new()
    {
        Epochs = 3, BatchSize = 16, LearningRate = 5e-3, Seed = 7, WarmupFraction = 0.1, GradientAccumulationSteps = accumulation,
        LengthBucketing = bucketing, EarlyStoppingPatience = 5, CheckpointDirectory = checkpoints, CheckpointEverySteps = every,
    };

    /// <summary>Builds the model from the seed (as the estimator does) and trains it; dropout makes libtorch's generator matter.</summary>
    static Outcome Fit(TrainingSettings settings, CancellationToken cancel = default, IProgress<TrainingProgress>? progress = null,
        Action<long, long, TimeSpan>? onCheckpoint = null, List<LabeledExample>? train = null)
    {
        lock (TorchRandomLock.Sync)
        {
            torch.manual_seed(5);
            using var model = PretrainedModel.Load(SharedData.Fixture("bert"), numLabels: 2);
            LoraInjector.Apply(model, new LoraOptions { Rank = 4, Alpha = 8, Dropout = 0.1, LoraQuery = true, LoraValue = true });
            var trainer = new ClassifierTrainer(model, settings, 0, progress) { CheckpointWritten = onCheckpoint };
            var history = trainer.Train(train ?? Train, Validation, cancel);
            var weights = model.named_parameters().Where(p => p.parameter.requires_grad)
                .ToDictionary(p => p.name, p => p.parameter.detach().cpu().data<float>().ToArray());
            return new Outcome(history, weights);
        }
    }

    static void ShouldMatch(Outcome resumed, Outcome whole)
    {
        resumed.History.StepLosses.Should().Equal(whole.History.StepLosses, "every step's loss is the same, bit for bit");
        resumed.History.Epochs.Select(e => (e.Epoch, e.TrainLoss, e.ValidationLoss, e.ValidationAccuracy))
            .Should().Equal(whole.History.Epochs.Select(e => (e.Epoch, e.TrainLoss, e.ValidationLoss, e.ValidationAccuracy)));
        resumed.History.BestEpoch.Should().Be(whole.History.BestEpoch);
        resumed.History.Cancelled.Should().BeFalse();
        resumed.Weights.Keys.Should().BeEquivalentTo(whole.Weights.Keys);
        foreach (var (name, w) in whole.Weights) resumed.Weights[name].Should().Equal(w, name);
    }

    [Theory]
    [InlineData(7, 1, false)]    // mid-epoch 2
    [InlineData(6, 1, false)]    // at the end of epoch 1's last step, before its validation
    [InlineData(4, 2, true)]     // accumulation and length bucketing
    public void A_cancelled_fit_resumed_from_its_checkpoint_ends_as_the_uninterrupted_fit(int stopAfter, int accumulation, bool bucketing)
    {
        using var dir = new TempDir();
        var whole = Fit(Settings(null, accumulation, bucketing));

        using var cts = new CancellationTokenSource();
        var stopped = Fit(Settings(dir.Path, accumulation, bucketing), cts.Token,
            new SynchronousProgress<TrainingProgress>(p => { if (p.Step == stopAfter) cts.Cancel(); }));
        stopped.History.Cancelled.Should().BeTrue();
        stopped.History.StepLosses.Should().HaveCount(stopAfter);
        TrainingCheckpoint.Exists(dir.Path).Should().BeTrue();

        var resumedSettings = Settings(dir.Path, accumulation, bucketing);
        resumedSettings.ResumeFromCheckpoint = true;
        ShouldMatch(Fit(resumedSettings), whole);
    }

    [Fact]
    public void A_fit_killed_after_any_checkpoint_resumes_to_the_same_end()
    {
        using var dir = new TempDir();
        using var saved = new TempDir();
        var copies = new List<(long Step, string Folder)>();
        var whole = Fit(Settings(dir.Path), onCheckpoint: (step, bytes, _) =>
        {
            bytes.Should().BeGreaterThan(0);
            var copy = Path.Combine(saved.Path, $"{copies.Count}");
            Directory.CreateDirectory(copy);
            File.Copy(TrainingCheckpoint.PathIn(dir.Path), TrainingCheckpoint.PathIn(copy));
            copies.Add((step, copy));
        });
        copies.Select(c => c.Step).Should().Equal(new long[] { 4, 6, 8, 12, 16, 18 }, "every 4 steps, and at each epoch's end (6 steps per epoch)");

        foreach (var (_, folder) in new[] { copies[0], copies[1], copies[^1] })   // mid-epoch, end of an epoch, finished
        {
            var settings = Settings(folder);
            settings.ResumeFromCheckpoint = true;
            ShouldMatch(Fit(settings), whole);
        }
    }

    [Fact]
    public void A_checkpoint_of_other_settings_or_data_is_refused_with_what_differs()
    {
        using var dir = new TempDir();
        using var cts = new CancellationTokenSource();
        Fit(Settings(dir.Path), cts.Token, new SynchronousProgress<TrainingProgress>(p => { if (p.Step == 2) cts.Cancel(); }));

        var other = Settings(dir.Path);
        other.ResumeFromCheckpoint = true;
        other.LearningRate = 1e-2;
        var act = () => Fit(other);
        act.Should().Throw<InvalidDataException>().WithMessage("*belongs to another run*training settings*");

        var resume = Settings(dir.Path);
        resume.ResumeFromCheckpoint = true;
        ((Action)(() => Fit(resume, train: SyntheticTask.Make(96, seed: 30)))).Should().Throw<InvalidDataException>().WithMessage("*training or validation data*");

        var missing = Settings(Path.Combine(dir.Path, "none"));
        missing.ResumeFromCheckpoint = true;
        ((Action)(() => Fit(missing))).Should().Throw<FileNotFoundException>().WithMessage("*No training checkpoint*");
    }

    [Fact]
    public void Resuming_needs_a_checkpoint_directory()
    {
        var settings = Settings(null);
        settings.ResumeFromCheckpoint = true;
        settings.Invoking(s => s.ValidateTraining()).Should().Throw<ArgumentException>().WithMessage("*CheckpointDirectory*");
    }
}
