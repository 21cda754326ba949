using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Cli.Running;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary>
/// `lora train` killed (SIGKILL) as a child process at chosen and at seeded random points, into a folder holding a
/// previous run: before the commit the previous run's files stay byte-identical; `lora train --resume` then ends with
/// the uninterrupted run's history and metrics exactly, and leaves no staging folder or temporary file behind.
/// </summary>
public class TrainKillTests(KillFixture fixture) : IClassFixture<KillFixture>
{
    static Dictionary<string, string> Hashes(string dir) =>
        Directory.EnumerateFiles(dir).Where(f => Path.GetFileName(f) != RunFolder.LockName)   // a killed run's lock file, released, goes with the next run
            .ToDictionary(f => Path.GetFileName(f), f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));

    /// <summary>Continues the killed run with --resume; when there is nothing to resume (killed before its first checkpoint, or after it finished), starts it again.</summary>
    async Task Finish(string dir)
    {
        var resumed = await ProcessRun.Lora("train", "--resume", dir, "--json");
        if (resumed.ExitCode == ExitCodes.Usage)
        {
            resumed.Stderr.Should().Contain("--resume");
            resumed = await ProcessRun.Lora(fixture.NextRun(dir));
        }
        resumed.ExitCode.Should().Be(0, $"the folder held {string.Join(", ", Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dir, f)))}; {resumed.Stderr}");
    }

    static string? StepLosses(string dir)
    {
        var path = Path.Combine(dir, "history.json");
        if (!File.Exists(path)) return null;
        using var history = JsonDocument.Parse(File.ReadAllText(path));
        return history.RootElement.GetProperty("stepLosses").GetRawText();
    }

    void ShouldHoldTheUninterruptedRun(string dir)
    {
        Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).Should().BeEquivalentTo(RunFolder.RunFiles, "no staging folder or temporary file is left");
        using var history = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "history.json")));
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")));
        var h = history.RootElement;
        h.GetProperty("stepLosses").GetRawText().Should().Be(fixture.Reference.GetProperty("stepLosses").GetRawText(), "every step's loss is the uninterrupted run's");
        h.GetProperty("epochs").EnumerateArray().Select(e => (e.GetProperty("trainLoss").GetDouble(), e.GetProperty("validationLoss").GetDouble()))
            .Should().Equal(fixture.Reference.GetProperty("epochs").EnumerateArray().Select(e => (e.GetProperty("trainLoss").GetDouble(), e.GetProperty("validationLoss").GetDouble())));
        foreach (var metric in new[] { "microAccuracy", "macroAccuracy", "logLoss", "confusionMatrix" })
            metrics.RootElement.GetProperty(metric).GetRawText().Should().Be(fixture.ReferenceMetrics.GetProperty(metric).GetRawText(), metric);
    }

    [Theory]
    [InlineData("start", false)]     // before training: no checkpoint yet
    [InlineData("step:3", false)]    // mid-epoch 1, after the checkpoint of step 2
    [InlineData("step:6", false)]    // mid-epoch 2
    [InlineData("saved", false)]     // model.zip staged, the rest not
    [InlineData("marked", true)]     // commit marker written, nothing moved
    [InlineData("moving", true)]     // one file moved
    public async Task A_run_killed_at_a_point_leaves_the_previous_run_intact_and_resumes_to_the_uninterrupted_result(string point, bool committed)
    {
        var dir = fixture.CopyOfPreviousRun();
        var before = Hashes(dir);

        var killed = await ProcessRun.Lora(new Dictionary<string, string> { [CrashPoint.Variable] = point }, fixture.NextRun(dir));

        killed.ExitCode.Should().Be(137, $"the run kills itself at '{point}'; stderr: {killed.Stderr}");
        if (!committed) Hashes(dir).Should().BeEquivalentTo(before, "nothing of the previous run changes before the commit marker");
        await Finish(dir);
        ShouldHoldTheUninterruptedRun(dir);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public async Task A_run_killed_at_a_random_moment_leaves_the_previous_run_intact_and_resumes_to_the_uninterrupted_result(int seed)
    {
        var dir = fixture.CopyOfPreviousRun();
        var before = Hashes(dir);
        // Between a quarter of the uninterrupted run's time (startup over) and most of it (the commit near).
        var delay = TimeSpan.FromSeconds(fixture.ReferenceSeconds * (0.25 + 0.6 * new Random(seed).NextDouble()));

        // The run waits after its commit until it is killed: the kill always lands, however fast this run is.
        var killed = await ProcessRun.Lora(new Dictionary<string, string> { [CrashPoint.HoldVariable] = "committed" }, delay, fixture.NextRun(dir));

        killed.ExitCode.Should().Be(137, $"the run is killed after {delay.TotalSeconds:F2} s at the latest; stderr: {killed.Stderr}");
        var listing = string.Join(", ", Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dir, f)));
        // With the commit marker written the commit has begun (the next start finishes it); without it the folder holds
        // the previous run's files unchanged, or, once the roll-forward is past the marker, the new run's.
        if (!File.Exists(Path.Combine(dir, RunFolder.StagingName, RunFolder.MarkerName)))
        {
            var now = Hashes(dir);
            if (now.Count != before.Count || now.Any(f => before.GetValueOrDefault(f.Key) != f.Value))
                StepLosses(dir).Should().Be(fixture.Reference.GetProperty("stepLosses").GetRawText(),
                    $"killed after {delay.TotalSeconds:F2} s without a commit marker, the folder holds the previous run or the new one; it holds {listing}");
        }
        await Finish(dir);
        ShouldHoldTheUninterruptedRun(dir);
    }

    [Fact]
    public async Task Resume_refuses_other_options_and_a_checkpoint_whose_data_changed()
    {
        var dir = Path.Combine(fixture.Root, "changed-" + Guid.NewGuid().ToString("N")[..8]);
        var data = Path.Combine(fixture.Root, $"train-{Guid.NewGuid():N}.tsv");
        File.Copy(fixture.Train, data);
        var args = fixture.NextRun(dir);
        args[Array.IndexOf(args, "--data") + 1] = data;
        (await ProcessRun.Lora(new Dictionary<string, string> { [CrashPoint.Variable] = "step:3" }, args)).ExitCode.Should().Be(137);

        CliRun.Lora("train", "--resume", dir, "--epochs", "5").ShouldFailCleanly(ExitCodes.Usage, "--epochs 5 differs", "--epochs 2");
        CliRun.Lora("train", "--resume", fixture.Root).ShouldFailCleanly(ExitCodes.Usage, "no unfinished run");

        var lines = File.ReadAllLines(data);
        lines[1] = lines[1].Replace("\t", "\tchanged ");   // at the start: the end of a long message is cut at 32 tokens
        File.WriteAllLines(data, lines);
        var changed = CliRun.Lora("train", "--resume", dir);
        changed.ExitCode.Should().Be(ExitCodes.InvalidInput, changed.Stderr);
        changed.Stderr.Should().Contain("belongs to another run").And.Contain("training or validation data");
        Directory.Exists(Path.Combine(dir, RunFolder.StagingName)).Should().BeTrue("the checkpoint is kept for a resume with the right data");
    }

    [Fact]
    public void A_run_that_fails_leaves_a_previous_run_intact_and_no_new_folder()
    {
        var dir = fixture.CopyOfPreviousRun();
        var before = Hashes(dir);
        var broken = Path.Combine(fixture.Root, "no-tokenizer-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(broken);
        foreach (var f in new[] { "config.json", "model.safetensors" }) File.Copy(Path.Combine(fixture.BaseModel, f), Path.Combine(broken, f));
        string[] Args(string output) => new[] { "train", "--model", broken, "--data", fixture.Train, "--epochs", "1", "--output", output };

        CliRun.Lora(Args(dir)).ExitCode.Should().NotBe(0);
        Hashes(dir).Should().BeEquivalentTo(before);
        Directory.EnumerateFileSystemEntries(dir).Should().HaveCount(before.Count, "no staging folder is left");

        var fresh = Path.Combine(fixture.Root, "fresh-" + Guid.NewGuid().ToString("N")[..8]);
        CliRun.Lora(Args(fresh)).ExitCode.Should().NotBe(0);
        Directory.Exists(fresh).Should().BeFalse("a failed run with nothing to resume leaves no folder");
    }
}

/// <summary>A tiny BERT, SMS-spam samples, a previous run folder, and the uninterrupted result of the run the tests kill.</summary>
public sealed class KillFixture : IDisposable
{
    readonly TempDir _dir = new();
    public string Root => _dir.Path;
    public string BaseModel { get; }
    public string Train { get; }
    public string Validation { get; }
    public string PreviousRun { get; }
    public JsonElement Reference { get; }
    public JsonElement ReferenceMetrics { get; }
    public double ReferenceSeconds { get; }

    public KillFixture()
    {
        BaseModel = TinyCheckpoint.Bert(Path.Combine(Root, "bert"), hidden: 32, seed: 3);
        Train = TextData.WriteTsv(Path.Combine(Root, "train.tsv"), TextData.Balanced(TextData.SmsSpam(0, 2000), 30));
        Validation = TextData.WriteTsv(Path.Combine(Root, "validation.tsv"), TextData.Balanced(TextData.SmsSpam(3000, 2000), 10));
        PreviousRun = Path.Combine(Root, "previous");
        var previous = CliRun.Lora("train", "--model", BaseModel, "--data", Train, "--validation", Validation, "--epochs", "1",
            "--max-length", "32", "--rank", "2", "--seed", "3", "--output", PreviousRun, "--json");
        previous.ExitCode.Should().Be(0, previous.Stderr);

        var reference = Path.Combine(Root, "reference");
        var clock = Stopwatch.StartNew();
        var result = ProcessRun.Lora(NextRun(reference)).GetAwaiter().GetResult();
        ReferenceSeconds = clock.Elapsed.TotalSeconds;
        result.ExitCode.Should().Be(0, result.Stderr);
        Reference = JsonDocument.Parse(File.ReadAllText(Path.Combine(reference, "history.json"))).RootElement.Clone();
        ReferenceMetrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(reference, "metrics.json"))).RootElement.Clone();
    }

    /// <summary>The run the tests kill: 60 rows, batch 16, 2 epochs = 8 optimizer steps, a checkpoint every 2, dropout on.</summary>
    public string[] NextRun(string output) => new[]
    {
        "train", "--model", BaseModel, "--data", Train, "--validation", Validation, "--epochs", "2", "--learning-rate", "5e-3",
        "--max-length", "32", "--rank", "4", "--alpha", "8", "--dropout", "0.1", "--seed", "8", "--checkpoint-every", "2", "--output", output, "--json",
    };

    /// <summary>A fresh copy of the previous run's folder.</summary>
    public string CopyOfPreviousRun()
    {
        var copy = Path.Combine(Root, "run-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(copy);
        foreach (var f in Directory.EnumerateFiles(PreviousRun)) File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));
        return copy;
    }

    public void Dispose() => _dir.Dispose();
}
