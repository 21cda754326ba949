using Microsoft.ML.LoRA.Cli.Running;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Training;

namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary>
/// The run folder's commit: the staged files replace the previous run's (whose files the new run lacks go), an
/// interruption before the commit marker leaves the previous files as they were, one after it is rolled forward by
/// the next run, and the next run clears unfinished staging folders and temporary files.
/// </summary>
public class RunFolderTests
{
    sealed class Crash : Exception { }

    static readonly string[] Previous = { "model.zip", "options.json", "metrics.json", "history.json", "training.png", "log.txt" };
    static readonly string[] Next = { "model.zip", "options.json", "metrics.json", "history.json", "log.txt" };   // no chart

    static void WritePrevious(string dir)
    {
        Directory.CreateDirectory(dir);
        foreach (var f in Previous) File.WriteAllText(Path.Combine(dir, f), "previous " + f);
    }

    static RunFolder StageNext(string dir)
    {
        var run = RunFolder.StartNew(dir, _ => { });
        foreach (var f in Next) File.WriteAllText(run.Staged(f), "next " + f);
        File.WriteAllText(TrainingCheckpoint.PathIn(run.StagingPath), "checkpoint");
        File.WriteAllText(run.Staged(RunFolder.ResumeName), "{}");
        return run;
    }

    static Dictionary<string, string> Contents(string dir) =>
        Directory.EnumerateFileSystemEntries(dir).Where(f => Path.GetFileName(f) != RunFolder.LockName).ToDictionary(f => Path.GetFileName(f), f => File.Exists(f) ? File.ReadAllText(f) : "(folder)");

    static void ShouldHoldTheNextRunOnly(string dir) =>
        Contents(dir).Should().BeEquivalentTo(Next.ToDictionary(f => f, f => "next " + f), "the previous run's training.png must not survive beside the new run's files");

    [Fact]
    public void A_commit_replaces_the_previous_runs_files_and_removes_those_the_new_run_lacks()
    {
        using var tmp = new TempDir();
        var dir = tmp.File("run");
        WritePrevious(dir);

        using (var run = StageNext(dir)) run.Commit();

        ShouldHoldTheNextRunOnly(dir);
    }

    [Theory]
    [InlineData("staged", false)]
    [InlineData("marked", true)]
    [InlineData("moving", true)]
    [InlineData("moved", true)]
    public void An_interrupted_commit_leaves_the_previous_files_or_is_rolled_forward_by_the_next_start(string point, bool committed)
    {
        using var tmp = new TempDir();
        var dir = tmp.File("run");
        WritePrevious(dir);
        var before = Contents(dir);

        var run = StageNext(dir);
        run.Invoking(r => r.Commit(p => { if (p == point) throw new Crash(); })).Should().Throw<Crash>();
        run.Dispose();   // as the system releases a killed process's lock

        if (!committed)
            Contents(dir).Where(kv => kv.Key != RunFolder.StagingName).Should().BeEquivalentTo(before, "nothing is replaced before the commit marker");
        var resumed = RunFolder.OpenForResume(dir, _ => { });
        resumed.Finished.Should().Be(committed);
        resumed.Dispose();
        if (committed) ShouldHoldTheNextRunOnly(dir);
        else
        {
            Contents(dir).Where(kv => kv.Key != RunFolder.StagingName).Should().BeEquivalentTo(before);
            resumed.HasCheckpoint.Should().BeTrue("an unfinished run stays for --resume");
            using var next = RunFolder.StartNew(dir, _ => { });   // a new run instead clears it
            Directory.EnumerateFiles(Path.Combine(dir, RunFolder.StagingName)).Should().BeEmpty();
        }
    }

    [Fact]
    public void A_new_run_clears_a_killed_runs_staging_folder_and_temporary_files()
    {
        using var tmp = new TempDir();
        var dir = tmp.File("run");
        WritePrevious(dir);
        var before = Contents(dir);
        StageNext(dir).Dispose();   // killed while training: no marker
        File.WriteAllText(Path.Combine(dir, $".model.zip.{Guid.NewGuid():N}.tmp"), "partial");
        File.WriteAllText(Path.Combine(dir, $".training.{Guid.NewGuid():N}.png"), "partial");
        var messages = new List<string>();

        using var run = RunFolder.StartNew(dir, messages.Add);

        Directory.EnumerateFiles(run.StagingPath).Should().BeEmpty();
        Contents(dir).Where(kv => kv.Key != RunFolder.StagingName).Should().BeEquivalentTo(before);
        messages.Should().ContainSingle().Which.Should().Contain("--resume");
    }

    [Fact]
    public void A_second_run_into_a_folder_in_use_is_refused_and_the_lock_goes_with_the_run()
    {
        using var tmp = new TempDir();
        var dir = tmp.File("run");
        using (var first = RunFolder.StartNew(dir, _ => { }))
        {
            var second = () => RunFolder.StartNew(dir, _ => { });
            second.Should().Throw<IOException>().WithMessage("*Another lora train is using the run folder*");
            File.Exists(Path.Combine(dir, RunFolder.LockName)).Should().BeTrue();
        }
        File.Exists(Path.Combine(dir, RunFolder.LockName)).Should().BeFalse();
        using var third = RunFolder.StartNew(dir, _ => { });
    }

    [Fact]
    public void A_failed_run_keeps_only_what_resuming_needs_and_removes_a_folder_it_created()
    {
        using var tmp = new TempDir();
        var fresh = RunFolder.StartNew(tmp.File("new"), _ => { });
        File.WriteAllText(fresh.Staged("options.json"), "{}");
        fresh.Abandon().Should().BeFalse("there is no checkpoint to resume from");
        Directory.Exists(tmp.File("new")).Should().BeFalse();

        var resumable = StageNext(tmp.File("resumable"));
        resumable.Abandon().Should().BeTrue();
        Directory.EnumerateFileSystemEntries(tmp.File("resumable")).Select(Path.GetFileName).Should().Equal(RunFolder.StagingName);

        WritePrevious(tmp.File("previous"));
        var over = RunFolder.StartNew(tmp.File("previous"), _ => { });
        over.Abandon().Should().BeFalse();
        Contents(tmp.File("previous")).Keys.Should().BeEquivalentTo(Previous);
    }
}
