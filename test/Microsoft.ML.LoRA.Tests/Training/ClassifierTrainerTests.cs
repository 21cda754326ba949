using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Training;
using TorchSharp;

namespace Microsoft.ML.LoRA.Tests.Training;

/// <summary>The training loop learns, is reproducible, stops cleanly, and refuses to continue on a diverged loss.</summary>
public class ClassifierTrainerTests
{
    static SequenceClassifier NewModel(int seed, LoraOptions? lora = null)
    {
        lock (TorchRandomLock.Sync)
        {
            torch.manual_seed(seed);
            var model = PretrainedModel.Load(SharedData.Fixture("bert"), numLabels: 2);
            LoraInjector.Apply(model, lora ?? new LoraOptions { Rank = 8, Alpha = 16, Dropout = 0.0, LoraMlp = true, LoraQuery = true, LoraValue = true });
            return model;
        }
    }

    static TrainingSettings Settings(int epochs = 6) => new()
    {
        Epochs = epochs, BatchSize = 16, LearningRate = 5e-3, Seed = 7, WarmupFraction = 0.1,
    };

    [Fact]
    public void Training_lowers_the_loss_and_learns_the_task()
    {
        var train = SyntheticTask.Make(320, seed: 1);
        var validation = SyntheticTask.Make(100, seed: 2);
        using var model = NewModel(1);
        var trainer = new ClassifierTrainer(model, Settings(), padTokenId: 0);
        var before = trainer.Evaluate(validation);

        var history = trainer.Train(train, validation);

        history.Epochs.Should().HaveCount(6);
        history.Epochs.Last().TrainLoss.Should().BeLessThan(history.Epochs.First().TrainLoss * 0.7);
        var after = trainer.Evaluate(validation);
        after.Accuracy.Should().BeGreaterThan(0.9, $"accuracy before training was {before.Accuracy:P0}");
        after.Loss.Should().BeLessThan(before.Loss);
    }

    [Fact]
    public void The_same_seed_and_data_give_the_same_history_twice()
    {
        var train = SyntheticTask.Make(96, seed: 3);
        var validation = SyntheticTask.Make(32, seed: 4);
        TrainingHistory Run()
        {
            lock (TorchRandomLock.Sync)   // seeding and training together, as the estimator does
            {
                using var model = NewModel(5, new LoraOptions { Dropout = 0.1 });
                return new ClassifierTrainer(model, Settings(epochs: 2), 0).Train(train, validation);
            }
        }

        var first = Run();
        var second = Run();

        second.Epochs.Select(e => (e.TrainLoss, e.ValidationLoss, e.ValidationAccuracy))
            .Should().Equal(first.Epochs.Select(e => (e.TrainLoss, e.ValidationLoss, e.ValidationAccuracy)));
    }

    [Fact]
    public void A_seeded_fit_gives_the_same_history_while_another_thread_builds_models()
    {
        var train = SyntheticTask.Make(96, seed: 3);
        TrainingHistory Run()
        {
            lock (TorchRandomLock.Sync)
            {
                using var model = NewModel(5, new LoraOptions { Dropout = 0.1 });
                return new ClassifierTrainer(model, Settings(epochs: 2), 0).Train(train);
            }
        }
        var alone = Run();

        // Every layer built draws its weights from libtorch's global generator, which the fit's dropout draws from too.
        using var stop = new CancellationTokenSource();
        int built = 0;
        var builder = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var layer = new LoraLinear(64, 64);
                layer.AttachAdapter(4, 8, 0, LoraScaling.AlphaOverRank, LoraInit.KaimingUniform);
                built++;
            }
        });
        while (Volatile.Read(ref built) == 0) Thread.Sleep(1);
        var beside = Run();
        stop.Cancel();
        builder.Wait();

        beside.Epochs.Select(e => e.TrainLoss).Should().Equal(alone.Epochs.Select(e => e.TrainLoss));
    }

    [Fact]
    public void Only_trainable_parameters_change()
    {
        var train = SyntheticTask.Make(32, seed: 5);
        using var model = NewModel(2);
        var frozen = model.named_parameters().Where(p => !p.parameter.requires_grad)
            .ToDictionary(p => p.name, p => p.parameter.detach().clone());

        new ClassifierTrainer(model, Settings(epochs: 1), 0).Train(train);

        foreach (var (name, p) in model.named_parameters().Where(p => !p.parameter.requires_grad))
        {
            p.grad.Should().BeNull($"{name} is frozen and needs no gradient");
            p.eq(frozen[name]).all().item<bool>().Should().BeTrue($"{name} is frozen");
        }
        model.named_parameters().Where(p => p.name.EndsWith("lora_B.weight"))
            .Should().OnlyContain(p => p.parameter.abs().sum().item<float>() > 0, "B starts at zero and must have been updated");
    }

    [Fact]
    public void A_nan_loss_stops_training_with_a_clear_error()
    {
        var train = SyntheticTask.Make(32, seed: 6);
        using var model = NewModel(3);
        using (torch.no_grad())
            model.named_parameters().First(p => p.name == "classifier.bias").parameter.fill_(float.NaN);

        var act = () => new ClassifierTrainer(model, Settings(epochs: 1), 0).Train(train);

        act.Should().Throw<TrainingDivergedException>().WithMessage("*loss became NaN*learning rate*");
    }

    [Fact]
    public void Cancellation_stops_between_steps_and_keeps_a_usable_model()
    {
        var train = SyntheticTask.Make(160, seed: 7);
        using var model = NewModel(4);
        using var cts = new CancellationTokenSource();
        var progress = new SynchronousProgress<TrainingProgress>(p => { if (p.Step == 3) cts.Cancel(); });

        var history = new ClassifierTrainer(model, Settings(epochs: 3), 0, progress).Train(train, null, cts.Token);

        history.Cancelled.Should().BeTrue();
        history.Epochs.Should().BeEmpty("the first epoch never finished");
        model.training.Should().BeFalse("the model is handed back ready for inference");
        var (loss, _) = new ClassifierTrainer(model, Settings(), 0).Evaluate(train);
        double.IsFinite(loss).Should().BeTrue();
    }

    [Fact]
    public void Early_stopping_ends_with_the_best_epochs_weights()
    {
        var train = SyntheticTask.Make(64, seed: 8);
        var validation = SyntheticTask.Make(64, seed: 9);
        using var model = NewModel(6);
        var settings = Settings(epochs: 12);
        settings.EarlyStoppingPatience = 1;
        settings.LearningRate = 0.05;   // large steps make validation accuracy move around

        var trainer = new ClassifierTrainer(model, settings, 0);
        var history = trainer.Train(train, validation);

        var best = history.Epochs.Single(e => e.Epoch == history.BestEpoch);
        history.Epochs.Max(e => e.ValidationAccuracy).Should().Be(best.ValidationAccuracy);
        trainer.Evaluate(validation).Accuracy.Should().Be(best.ValidationAccuracy!.Value);
        if (history.StoppedEarly) history.Epochs.Count.Should().BeLessThan(12);
    }

    [Fact]
    public void Progress_reports_every_optimizer_step_with_rates_and_time_left()
    {
        var train = SyntheticTask.Make(48, seed: 10);
        using var model = NewModel(7);
        var reports = new List<TrainingProgress>();
        var settings = Settings(epochs: 2);
        settings.GradientAccumulationSteps = 2;

        new ClassifierTrainer(model, settings, 0, new SynchronousProgress<TrainingProgress>(reports.Add)).Train(train);

        reports.Should().HaveCount(4, "48 examples / batch 16 = 3 batches -> 2 steps per epoch with accumulation 2");
        reports.Select(r => r.Step).Should().Equal(1, 2, 3, 4);
        reports.Should().OnlyContain(r => r.TotalSteps == 4 && r.SamplesPerSecond > 0 && r.LearningRate > 0);
        reports.Last().Remaining.Should().Be(TimeSpan.Zero);
    }
}
