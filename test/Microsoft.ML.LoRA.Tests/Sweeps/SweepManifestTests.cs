using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Sweeps;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Sweeps;

/// <summary>sweep.json guards resumption: other settings are refused, swept values and run-only options are not compared.</summary>
public class SweepManifestTests
{
    static LoraTextClassifierOptions Base() => new() { ModelPath = "model", BatchSize = 16, Lora = new LoraOptions { Rank = 8 } };

    [Fact]
    public void A_folder_with_other_settings_is_refused_naming_what_changed()
    {
        using var dir = new TempDir();
        var folder = new SweepFolder(dir.Path);
        var options = new SweepOptions { OutputFolder = dir.Path, SearchSpace = new LoraSearchSpace { Ranks = new[] { 2, 4 } } };
        SweepManifest.CreateOrCheck(folder, SweepManifest.Settings(Base(), 100, 20), options);
        var changed = Base();
        changed.BatchSize = 32;

        var sameAgain = () => SweepManifest.CreateOrCheck(folder, SweepManifest.Settings(Base(), 100, 20), options);
        var otherBatch = () => SweepManifest.CreateOrCheck(folder, SweepManifest.Settings(changed, 100, 20), options);
        var otherRows = () => SweepManifest.CreateOrCheck(folder, SweepManifest.Settings(Base(), 101, 20), options);

        sameAgain.Should().NotThrow();
        otherBatch.Should().Throw<InvalidOperationException>().WithMessage("*other settings*BatchSize: 16 -> 32*another output folder*");
        otherRows.Should().Throw<InvalidOperationException>().WithMessage("*TrainRows: 100 -> 101*");
    }

    [Fact]
    public void Swept_values_and_run_only_options_are_not_part_of_the_settings()
    {
        var a = Base();
        var b = Base();
        b.Lora.Rank = 2;
        b.Lora.Alpha = 99;
        b.LearningRate = 0.1;
        b.Epochs = 7;
        b.Threads = 1;
        b.Progress = new SynchronousProgress<Microsoft.ML.LoRA.Training.TrainingProgress>(_ => { });
        var c = Base();
        c.Lora.LoraMlp = true;

        SweepManifest.Settings(b, 10, 5).Should().Equal(SweepManifest.Settings(a, 10, 5));
        SweepManifest.Settings(c, 10, 5).Should().NotEqual(SweepManifest.Settings(a, 10, 5));
        SweepManifest.Settings(a, 10, 5).Should().ContainKeys("ModelPath", "BatchSize", "Seed", "MaxSequenceLength", "Lora.LoraMlp", "Lora.TargetModules", "ValidationSet");
    }
}
