using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.LoRA.Sweeps;
using Microsoft.ML.LoRA.Tests.Support;
using Xunit.Abstractions;

namespace Microsoft.ML.LoRA.Tests.Sweeps;

/// <summary>Real sweeps on SMS spam with a tiny BERT: results, best model, resumption, successive halving.</summary>
public class SweepRunnerTests(SpamSweepFixture fx, ITestOutputHelper output) : IClassFixture<SpamSweepFixture>
{
    static readonly string[] GridIds =
    {
        "r2_a8_lr0.001_e1_d0.05", "r2_a8_lr0.005_e1_d0.05", "r4_a8_lr0.001_e1_d0.05", "r4_a8_lr0.005_e1_d0.05",
    };

    [Fact]
    public void A_2x2_grid_writes_four_ranked_trials_and_a_best_model_that_reproduces_its_metric()
    {
        var result = fx.Grid;
        output.WriteLine($"grid of 4 trials in {fx.GridTime.TotalSeconds:F1} s\n{result.ToTable()}");

        result.Trials.Select(t => t.Id).Should().BeEquivalentTo(GridIds);
        result.Trials.Should().AllSatisfy(t =>
        {
            t.Status.Should().Be(TrialStatus.Succeeded);
            t.EpochsTrained.Should().Be(1);
            File.Exists(t.ModelPath).Should().BeTrue();
        });
        result.TrialsTrained.Should().Be(4);
        result.Trials.Select(t => t.Objective).Should().BeInAscendingOrder("log-loss: lower is better, best first");
        result.Trials.Select(t => t.Objective).Distinct().Should().HaveCount(4, "the configurations train differently");
        result.Best.Should().BeSameAs(result.Trials[0]);
        var rankedIds = result.Trials.Select(t => t.Id).ToList();

        var csv = File.ReadAllLines(result.ResultsCsvPath);
        csv.Should().HaveCount(5);
        var header = csv[0].Split(',');
        var rows = csv.Skip(1).Select(l => l.Split(',')).ToList();
        rows.Select(r => r[Array.IndexOf(header, "trial")]).Should().Equal(rankedIds);
        rows.Select(r => double.Parse(r[Array.IndexOf(header, "log_loss")], CultureInfo.InvariantCulture)).Should().Equal(result.Trials.Select(t => t.Objective));

        using var json = JsonDocument.Parse(File.ReadAllText(result.ResultsJsonPath));
        json.RootElement.GetProperty("metric").GetString().Should().Be("LogLoss");
        json.RootElement.GetProperty("trials").EnumerateArray().Select(t => t.GetProperty("id").GetString()).Should().Equal(rankedIds);
        File.ReadAllLines(result.TrialsJournalPath).Should().HaveCount(4);

        using var best = JsonDocument.Parse(File.ReadAllText(result.BestJsonPath));
        best.RootElement.GetProperty("trial").GetProperty("id").GetString().Should().Be(result.Best.Id);
        best.RootElement.GetProperty("parameters").GetProperty("rank").GetInt32().Should().Be(result.Best.Configuration.Rank);
        File.ReadAllBytes(result.BestModelPath).Should().Equal(File.ReadAllBytes(result.Best.ModelPath!));

        var loaded = fx.Ml.Model.LoadWithLora(result.BestModelPath, out var schema);
        schema.Select(c => c.Name).Should().Contain(new[] { "Label", "Text" });
        var metrics = fx.Ml.MulticlassClassification.Evaluate(loaded.Transform(fx.Validation));
        metrics.LogLoss.Should().BeApproximately(result.Best.Objective, 1e-9, "the saved best model scores the validation data as recorded");
        metrics.MicroAccuracy.Should().Be(result.Best.Metrics!.Accuracy);
        foreach (var stage in PipelineStages.Flatten(loaded).OfType<IDisposable>()) stage.Dispose();

        fx.GridModelParameters.Should().HaveCount(4).And.AllSatisfy(p => p.IsInvalid.Should().BeTrue("every trial's model is disposed once it is saved"));
    }

    [Fact]
    public void A_cancelled_sweep_resumes_training_only_the_unfinished_trials_and_ends_with_the_same_table()
    {
        var folder = fx.Folder("resume");
        var journal = Path.Combine(folder, "trials.jsonl");
        using var cancel = new CancellationTokenSource();
        string? first = null;
        var interrupted = new SynchronousProgress<SweepProgress>(p =>
        {
            if (p.Kind == SweepProgressKind.TrialFinished) first ??= p.Trial.Id;
            else if (p.Kind == SweepProgressKind.TrainingStep && first is not null && p.Trial.Id != first) cancel.Cancel();   // mid-way through trial 2
        });
        var clock = Stopwatch.StartNew();

        var firstRun = () => SweepRunner.Run(fx.Ml, SweepPipelines.Multiclass(fx.Ml), fx.BaseOptions(), fx.Train, fx.Validation,
            SpamSweepFixture.GridOptions(folder), interrupted, cancel.Token);

        firstRun.Should().Throw<OperationCanceledException>();
        first.Should().NotBeNull();
        File.ReadAllLines(journal).Should().HaveCount(1, "only the finished trial is recorded; the one cancelled mid-training is not");
        Directory.GetFiles(Path.Combine(folder, "trials"), "model.zip", SearchOption.AllDirectories).Should().HaveCount(1);
        var firstModel = Path.Combine(folder, "trials", first!, "model.zip");
        var firstWritten = File.GetLastWriteTimeUtc(firstModel);
        File.AppendAllText(journal, "{\"id\":\"r4_a8_lr0.005_e1_d0.05\",\"rung\":0,\"seq");   // as if killed while appending a line

        var started = new List<string>();
        var skipped = new List<string>();
        var resumed = SweepRunner.Run(fx.Ml, SweepPipelines.Multiclass(fx.Ml), fx.BaseOptions(), fx.Train, fx.Validation,
            SpamSweepFixture.GridOptions(folder), new SynchronousProgress<SweepProgress>(p =>
            {
                if (p.Kind == SweepProgressKind.TrialStarted) started.Add(p.Trial.Id);
                if (p.Kind == SweepProgressKind.TrialSkipped) skipped.Add(p.Trial.Id);
            }));
        output.WriteLine($"interrupted + resumed in {clock.Elapsed.TotalSeconds:F1} s\n{resumed.ToTable()}");

        skipped.Should().Equal(first);
        started.Should().HaveCount(3).And.NotContain(first).And.OnlyHaveUniqueItems();
        (resumed.TrialsTrained, resumed.TrialsResumed).Should().Be((3, 1));
        File.GetLastWriteTimeUtc(firstModel).Should().Be(firstWritten, "the finished trial is not retrained");
        File.ReadAllLines(journal).Should().HaveCount(4).And.AllSatisfy(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetString().Should().BeOneOf(GridIds));
        resumed.Trials.Select(t => t.Id).Should().Equal(fx.Grid.Trials.Select(t => t.Id), "the same final table as the uninterrupted sweep");
        resumed.Trials.Select(t => t.Objective).Should().Equal(fx.Grid.Trials.Select(t => t.Objective));
        File.Exists(resumed.BestModelPath).Should().BeTrue();
        File.ReadAllLines(resumed.ResultsCsvPath).Should().HaveCount(5);
    }

    [Fact]
    public void Successive_halving_trains_fewer_epochs_than_the_grid_and_promotes_the_top_of_each_rung()
    {
        var strategy = SweepStrategy.SuccessiveHalving(eta: 2, minEpochs: 1, maxEpochs: 4);
        var options = new SweepOptions
        {
            OutputFolder = fx.Folder("halving"), SearchSpace = SpamSweepFixture.GridSpace(), Strategy = strategy, Metric = SweepMetric.LogLoss,
        };
        var clock = Stopwatch.StartNew();

        var result = SweepRunner.Run(fx.Ml, SweepPipelines.Multiclass(fx.Ml), fx.BaseOptions(), fx.Train, fx.Validation, options);
        output.WriteLine($"successive halving in {clock.Elapsed.TotalSeconds:F1} s\n{result.ToTable()}");

        var rungs = result.Trials.GroupBy(t => t.Rung).OrderBy(g => g.Key).Select(g => g.ToList()).ToList();
        rungs.Select(r => r.Count).Should().Equal(4, 2, 1);
        rungs.Select(r => r.Select(t => t.EpochsTrained).Distinct().Single()).Should().Equal(1, 2, 4);
        int totalEpochs = result.Trials.Sum(t => t.EpochsTrained);
        totalEpochs.Should().Be((int)SuccessiveHalvingStrategy.TotalEpochs(strategy.PlanRungs(4))).And.Be(12);
        totalEpochs.Should().BeLessThan(4 * 4, "the equivalent grid trains all 4 configurations for 4 epochs");
        for (int k = 1; k < rungs.Count; k++)
        {
            var promoted = rungs[k].Select(t => t.Configuration.WithEpochs(1).Id).ToHashSet();
            var previous = rungs[k - 1];
            previous.Count(t => promoted.Contains(t.Configuration.WithEpochs(1).Id)).Should().Be(rungs[k].Count, "survivors come from the previous rung");
            var kept = previous.Where(t => promoted.Contains(t.Configuration.WithEpochs(1).Id)).Max(t => t.Objective);
            var dropped = previous.Where(t => !promoted.Contains(t.Configuration.WithEpochs(1).Id)).Min(t => t.Objective);
            kept.Should().BeLessThan(dropped, $"rung {k} holds the lowest log-losses of rung {k - 1}");
        }
        rungs[0].Select(t => (t.Id, t.Objective)).Should().BeEquivalentTo(fx.Grid.Trials.Select(t => (t.Id, t.Objective)),
            "rung 0 is the 1-epoch grid: same ids, same results");
        result.Best.Should().BeSameAs(result.Trials[0]);
        (result.Best.Rung, result.Best.EpochsTrained).Should().Be((2, 4));
        File.ReadAllBytes(result.BestModelPath).Should().Equal(File.ReadAllBytes(result.Best.ModelPath!));
    }

    [Fact]
    public void A_binary_sweep_ranks_by_auc_and_records_the_binary_metrics()
    {
        TextData.BinaryText ToBinary(TextData.LabeledText r) => new() { Label = r.Label == "spam", Text = r.Text };
        var train = fx.Ml.Data.LoadFromEnumerable(fx.Ml.Data.CreateEnumerable<TextData.LabeledText>(fx.Train, reuseRowObject: false).Select(ToBinary).ToList());
        var validation = fx.Ml.Data.LoadFromEnumerable(fx.Ml.Data.CreateEnumerable<TextData.LabeledText>(fx.Validation, reuseRowObject: false).Select(ToBinary).ToList());
        var options = new SweepOptions { OutputFolder = fx.Folder("binary"), SearchSpace = new LoraSearchSpace { Ranks = new[] { 2, 4 } }, Metric = SweepMetric.Auc };

        var result = SweepRunner.Run(fx.Ml, SweepPipelines.Binary(fx.Ml), fx.BaseOptions(), train, validation, options);
        output.WriteLine(result.ToTable());

        result.Trials.Should().HaveCount(2).And.AllSatisfy(t => (t.Metrics!.Auc, t.Metrics.F1).Should().NotBe(((double?)null, (double?)null)));
        result.Trials.Select(t => t.Objective).Should().BeInDescendingOrder("AUC: higher is better");
        var loaded = fx.Ml.Model.LoadWithLora(result.BestModelPath, out _);
        var metrics = fx.Ml.BinaryClassification.Evaluate(loaded.Transform(validation));
        metrics.AreaUnderRocCurve.Should().BeApproximately(result.Best.Objective, 1e-9);
        result.Best.Metrics!.F1.Should().Be(metrics.F1Score);
        result.Best.Metrics.MacroAccuracy.Should().BeApproximately(metrics.ConfusionMatrix.PerClassRecall.Average(), 1e-12);
        foreach (var stage in PipelineStages.Flatten(loaded).OfType<IDisposable>()) stage.Dispose();
    }

    [Fact]
    public void A_diverging_trial_is_recorded_as_failed_ranked_last_and_not_retried()
    {
        var options = new SweepOptions
        {
            OutputFolder = fx.Folder("diverging"), SearchSpace = new LoraSearchSpace { Ranks = new[] { 2 }, LearningRates = new[] { 1e-3, 1e30 } },
            Metric = SweepMetric.LogLoss,
        };
        var kinds = new List<SweepProgressKind>();
        var progress = new SynchronousProgress<SweepProgress>(p => { if (p.Kind != SweepProgressKind.TrainingStep) kinds.Add(p.Kind); });

        var result = SweepRunner.Run(fx.Ml, SweepPipelines.Multiclass(fx.Ml), fx.BaseOptions(), fx.Train, fx.Validation, options, progress);
        var again = SweepRunner.Run(fx.Ml, SweepPipelines.Multiclass(fx.Ml), fx.BaseOptions(), fx.Train, fx.Validation, options, progress);

        result.Trials.Select(t => t.Status).Should().Equal(TrialStatus.Succeeded, TrialStatus.Failed);
        var failed = result.Trials[1];
        (failed.Id, failed.ModelPath, double.IsNaN(failed.Objective)).Should().Be(("r2_a8_lr1E+30_e1_d0.05", (string?)null, true));
        failed.Error.Should().Contain("loss became");
        result.Best.Id.Should().Be("r2_a8_lr0.001_e1_d0.05");
        kinds.Should().Equal(SweepProgressKind.TrialStarted, SweepProgressKind.TrialFinished, SweepProgressKind.TrialStarted, SweepProgressKind.TrialFailed,
            SweepProgressKind.TrialSkipped, SweepProgressKind.TrialSkipped);
        again.Trials.Select(t => (t.Id, t.Status)).Should().Equal(result.Trials.Select(t => (t.Id, t.Status)));
        File.ReadAllLines(result.ResultsCsvPath)[2].Should().Contain("Failed").And.Contain("loss became");
    }

    [Fact]
    public void A_factory_that_ignores_the_trial_options_is_caught_after_the_first_fit()
    {
        var fixedOptions = fx.BaseOptions();
        Func<LoraTextClassifierOptions, IEstimator<ITransformer>> ignoring = _ => fx.Ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(fx.Ml.MulticlassClassification.Trainers.LoraTextClassifier(fixedOptions));
        var options = new SweepOptions { OutputFolder = fx.Folder("ignoring"), SearchSpace = new LoraSearchSpace { Ranks = new[] { 2 } } };

        var run = () => SweepRunner.Run(fx.Ml, ignoring, fx.BaseOptions(), fx.Train, fx.Validation, options);

        run.Should().Throw<InvalidOperationException>().WithMessage("The pipeline factory did not build its LoRA classifier from the options it was given*rank 2*rank 4*");
        File.Exists(Path.Combine(options.OutputFolder, "trials.jsonl")).Should().BeFalse("nothing is recorded for a trial that trained the wrong configuration");
    }
}
