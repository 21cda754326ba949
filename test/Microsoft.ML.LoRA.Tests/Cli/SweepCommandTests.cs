using System.Diagnostics;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary>lora sweep: a 2x2 grid finishes 4 trials and a best model; a killed sweep resumes with the remaining trials only.</summary>
public class SweepCommandTests
{
    static (string Model, string Train, string Validation) Inputs(TempDir dir)
    {
        var model = TinyCheckpoint.Bert(Path.Combine(dir.Path, "bert"), hidden: 32, seed: 4);
        string Write(string name, IEnumerable<TextData.LabeledText> rows) => TextData.WriteTsv(Path.Combine(dir.Path, name), rows);
        return (model, Write("train.tsv", TextData.Balanced(TextData.SmsSpam(0, 2000), 24)), Write("dev.tsv", TextData.Balanced(TextData.SmsSpam(3000, 2000), 12)));
    }

    static string[] Args(string model, string train, string validation, string output) =>
        new[] { "sweep", "--model", model, "--data", train, "--validation", validation, "--ranks", "2,4", "--learning-rates", "1e-3,5e-3",
                "--epochs", "1", "--max-length", "40", "--batch-size", "8", "--metric", "log-loss", "--output", output };

    [Fact]
    public async Task A_killed_sweep_resumes_with_the_remaining_trials_only()
    {
        using var dir = new TempDir();
        var (model, train, validation) = Inputs(dir);
        var output = Path.Combine(dir.Path, "sweep");
        var journal = Path.Combine(output, "trials.jsonl");

        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(ProcessRun.LoraDll());
        foreach (var a in Args(model, train, validation, output)) start.ArgumentList.Add(a);
        using (var process = Process.Start(start)!)
        {
            _ = process.StandardOutput.ReadToEndAsync();
            _ = process.StandardError.ReadToEndAsync();
            var deadline = DateTime.UtcNow.AddMinutes(5);
            while (!(File.Exists(journal) && File.ReadAllLines(journal).Length >= 1) && !process.HasExited && DateTime.UtcNow < deadline)
                await Task.Delay(50);
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
        int finishedBeforeKill = File.ReadAllLines(journal).Count(l => l.TrimEnd().EndsWith('}'));
        finishedBeforeKill.Should().BeInRange(1, 3, "the sweep was killed after its first trial and before its last");

        var rerun = CliRun.Lora(Args(model, train, validation, output));

        rerun.ExitCode.Should().Be(ExitCodes.Success, rerun.Stderr);
        rerun.StderrLines.Count(l => l.EndsWith(": training")).Should().Be(4 - finishedBeforeKill, "only the remaining trials train");
        rerun.StderrLines.Count(l => l.Contains("skipped")).Should().Be(finishedBeforeKill);
        File.ReadAllLines(Path.Combine(output, "results.csv")).Should().HaveCount(1 + 4, "a header and the 4 trials");
        File.Exists(Path.Combine(output, "best-model.zip")).Should().BeTrue();
        rerun.Stdout.Should().Contain("Best: ");

        var predict = CliRun.Lora("predict", "--model", Path.Combine(output, "best-model.zip"), "--data", validation);
        predict.ExitCode.Should().Be(0, predict.Stderr);
        predict.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Should().HaveCount(1 + 24);
    }

    [Fact]
    public void Dry_run_lists_the_grid_and_bad_arguments_fail_cleanly()
    {
        var dry = CliRun.Lora("sweep", "--model", "unused", "--data", "unused.tsv", "--validation-fraction", "0.2", "--ranks", "1,2,4,8,16,32",
            "--alphas", "1,4,8,16,32,64", "--key", "both", "--projection", "both", "--mlp", "both", "--head", "both", "--dry-run");

        dry.ExitCode.Should().Be(0, dry.Stderr);
        var lines = dry.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines[0].Should().Be("rung 0: 576 trial(s)");
        lines.Skip(1).Should().HaveCount(576).And.OnlyHaveUniqueItems();

        CliRun.Lora("sweep", "--data", "x.tsv", "--validation-fraction", "0.2", "--ranks", "2,x").ShouldFailCleanly(ExitCodes.Usage, "--ranks", "'x'");
        CliRun.Lora("sweep", "--data", "x.tsv", "--ranks", "2").ShouldFailCleanly(ExitCodes.Usage, "validation");
        CliRun.Lora("sweep", "--data", "x.tsv", "--validation-fraction", "0.2", "--strategy", "annealing").ShouldFailCleanly(ExitCodes.Usage, "annealing");
    }
}
