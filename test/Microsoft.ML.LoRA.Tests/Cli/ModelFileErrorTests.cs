using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.LoRA.Tests.Persistence;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary>
/// Every damaged or odd model.zip is invalid input to the CLI: exit code 4 and one line that names the file and the
/// entry, the same for every command that reads it; a zip bomb costs the process no memory to speak of.
/// </summary>
public class ModelFileErrorTests(TrainedSpamPipeline trained) : IClassFixture<TrainedSpamPipeline>
{
    const string Adapter = "adapter/adapter_model.safetensors";

    string SaveModel(TempDir dir)
    {
        var path = dir.File("model.zip");
        new MLContext().Model.SaveWithLora(trained.Model, trained.Train.Schema, path);
        File.WriteAllText(dir.File("data.tsv"), "Label\tText\nham\thello\n");
        return path;
    }

    static void AddOne(System.IO.Compression.ZipArchive zip, string name)
    {
        using var s = zip.CreateEntry(name).Open();
        s.WriteByte(1);
    }

    public static TheoryData<string, string> Damage => new()
    {
        { "crc", Adapter },
        { "garbage-manifest", "lora-model.json" },
        { "dotdot", "adapter/.." },
        { "nested", "adapter/sub/x" },
        { "bomb", "pipeline/before.zip" },
    };

    [Theory]
    [MemberData(nameof(Damage))]
    public void A_damaged_model_file_exits_4_naming_file_and_entry_for_every_command(string damage, string entry)
    {
        using var dir = new TempDir();
        var saved = SaveModel(dir);
        var path = dir.File("damaged.zip");
        switch (damage)
        {
            case "crc": File.Copy(saved, path); ModelZipSurgery.FlipStoredBytes(path, Adapter, 1000); break;
            case "garbage-manifest": ModelZipSurgery.Rewrite(saved, path, (n, b) => n == "lora-model.json" ? "not json"u8.ToArray() : b); break;
            case "dotdot": ModelZipSurgery.Rewrite(saved, path, extra: zip => AddOne(zip, entry)); break;
            case "nested": ModelZipSurgery.Rewrite(saved, path, extra: zip => AddOne(zip, entry)); break;
            case "bomb": ModelZipSurgery.Rewrite(saved, path, (n, b) => n == entry ? null : b, zip => ModelZipSurgery.AddZeros(zip, entry, 1L << 30)); break;
        }
        var data = dir.File("data.tsv");

        var evaluate = CliRun.Lora("evaluate", "--model", path, "--data", data);
        var export = CliRun.Lora("export-adapter", "--model", path, "--output", dir.File("peft"));
        var predict = CliRun.Lora("predict", "--model", path, "--data", data, "--to", dir.File("predictions.tsv"));

        evaluate.ShouldFailCleanly(ExitCodes.InvalidInput, path, $"entry {entry}:");
        export.ShouldFailCleanly(ExitCodes.InvalidInput, path, $"entry {entry}:");
        predict.ShouldFailCleanly(ExitCodes.InvalidInput, path, $"entry {entry}:");
        export.StderrLines[0].Should().Be(evaluate.StderrLines[0], "export-adapter and evaluate check the file alike");
        Directory.Exists(dir.File("peft")).Should().BeFalse();
    }

    [Fact]
    public void A_zip_bomb_costs_the_lora_process_less_than_300_MB_over_a_file_that_fails_at_once()
    {
        if (!OperatingSystem.IsLinux()) return; // VmHWM comes from /proc
        using var dir = new TempDir();
        var saved = SaveModel(dir);
        var bomb = dir.File("bomb.zip");
        // A file without the manifest's entry table (as saved before it existed): only the size caps stand in the way.
        ModelZipSurgery.Rewrite(saved, bomb, (n, b) => n == "pipeline/before.zip" ? null : n == "lora-model.json" ? ModelZipSurgery.WithoutEntryTable(b) : b,
            zip => ModelZipSurgery.AddZeros(zip, "pipeline/before.zip", 2L << 30));
        var garbage = dir.File("garbage.zip");
        ModelZipSurgery.Rewrite(saved, garbage, (n, b) => n == "lora-model.json" ? "not json"u8.ToArray() : b);

        var (baselineCode, baselineKiB) = PeakOfLora("evaluate", "--model", garbage, "--data", dir.File("data.tsv"));
        var (bombCode, bombKiB) = PeakOfLora("evaluate", "--model", bomb, "--data", dir.File("data.tsv"));

        baselineCode.Should().Be(ExitCodes.InvalidInput);
        bombCode.Should().Be(ExitCodes.InvalidInput);
        baselineKiB.Should().BeGreaterThan(10_000, "VmHWM was read while the process ran");
        (bombKiB - baselineKiB).Should().BeLessThan(300 * 1024,
            "the 2 GiB entry is refused before it inflates (peak {0:N0} KiB, baseline {1:N0} KiB)", bombKiB, baselineKiB);
    }

    /// <summary>
    /// Runs lora.dll as a child and samples its peak resident set (VmHWM, monotonic) every few milliseconds until it
    /// exits: the last sample is a lower bound of the true peak, so a run that inflated gigabytes cannot pass.
    /// </summary>
    static (int ExitCode, long PeakKiB) PeakOfLora(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(ProcessRun.LoraDll());
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        long peak = 0;
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (!process.HasExited && DateTime.UtcNow < deadline)
        {
            peak = Math.Max(peak, VmHwmKiB(process.Id));
            Thread.Sleep(5);
        }
        process.WaitForExit();
        _ = stdout.Result;
        _ = stderr.Result;
        return (process.ExitCode, peak);
    }

    static long VmHwmKiB(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return 0;
    }
}
