using System.Diagnostics;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Common;

/// <summary>
/// A process killed mid-save leaves its temporary file beside the target and its scratch folder in the temp folder;
/// their names carry the owner's process id and machine, and the next write or scratch folder deletes those of
/// ended processes of this machine, never a live process's.
/// </summary>
public class TemporaryLitterTests
{
    static readonly string Host = ProcessOwnedNames.HostTag;
    static string Guid32() => Guid.NewGuid().ToString("N");

    /// <summary>The id of a process that has ended.</summary>
    static int DeadPid()
    {
        using var process = Process.Start(new ProcessStartInfo("dotnet", "--version") { RedirectStandardOutput = true, UseShellExecute = false })!;
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        int pid = process.Id;
        FluentActions.Invoking(() => Process.GetProcessById(pid)).Should().Throw<ArgumentException>("the process has ended");
        return pid;
    }

    [Fact]
    public void The_temporary_file_of_a_write_names_this_process()
    {
        using var dir = new TempDir();
        string[] during = Array.Empty<string>();

        AtomicFile.Write(dir.File("model.zip"), s => { during = Directory.GetFiles(dir.Path); s.WriteByte(1); });

        during.Should().ContainSingle().Which.Should().MatchRegex(
            $@"/\.model\.zip\.{Environment.ProcessId}-{Host}\.[0-9a-f]{{32}}\.tmp$");
    }

    [Fact]
    public void A_write_deletes_the_temporary_files_of_ended_processes_and_keeps_every_other()
    {
        using var dir = new TempDir();
        int dead = DeadPid();
        var stale = new[] { dir.File($".model.zip.{dead}-{Host}.{Guid32()}.tmp"), dir.File($".other.bin.{dead}-{Host}.{Guid32()}.tmp") };
        var kept = new[]
        {
            dir.File($".model.zip.{Environment.ProcessId}-{Host}.{Guid32()}.tmp"), // this (live) process
            dir.File($".model.zip.{dead}-0badf00d.{Guid32()}.tmp"),              // another machine, through a shared folder
            dir.File($".model.zip.{Guid32()}.tmp"),                              // written before names carried an owner
            dir.File($"model.zip.{dead}-{Host}.{Guid32()}.tmp"),                 // not a hidden temporary name
        };
        foreach (var f in stale.Concat(kept)) File.WriteAllText(f, "partial");

        AtomicFile.WriteAllText(dir.File("model.zip"), "complete");

        foreach (var f in stale) File.Exists(f).Should().BeFalse($"{Path.GetFileName(f)} was left by an ended process");
        foreach (var f in kept) File.Exists(f).Should().BeTrue($"{Path.GetFileName(f)} is not known to be stale");
        File.ReadAllText(dir.File("model.zip")).Should().Be("complete");
    }

    [Fact]
    public void A_new_scratch_folder_deletes_those_of_ended_processes_and_keeps_live_ones()
    {
        var temp = Path.GetTempPath();
        int dead = DeadPid();
        var stale = Path.Combine(temp, $"lora-{dead}-{Host}-{Guid32()}");
        var live = Path.Combine(temp, $"lora-{Environment.ProcessId}-{Host}-{Guid32()}");
        var elsewhere = Path.Combine(temp, $"lora-{dead}-0badf00d-{Guid32()}");
        try
        {
            foreach (var d in new[] { stale, live, elsewhere })
            {
                Directory.CreateDirectory(Path.Combine(d, "adapter"));
                File.WriteAllText(Path.Combine(d, "adapter", "adapter_model.safetensors"), "partial");
            }

            using (var scratch = new ScratchFolder())
            {
                Path.GetFileName(scratch.Path).Should().MatchRegex($"^lora-{Environment.ProcessId}-{Host}-[0-9a-f]{{32}}$");
                Directory.Exists(scratch.Path).Should().BeTrue();
            }

            Directory.Exists(stale).Should().BeFalse("it was left by an ended process");
            Directory.Exists(live).Should().BeTrue("this process is alive");
            Directory.Exists(elsewhere).Should().BeTrue("another machine's process cannot be checked");
        }
        finally
        {
            foreach (var d in new[] { stale, live, elsewhere })
                if (Directory.Exists(d)) Directory.Delete(d, recursive: true);
        }
    }

    [Fact]
    public void Crc32_matches_the_standard_check_value_and_what_zip_records()
    {
        Crc32.Compute("123456789"u8).Should().Be(0xCBF43926u);
        var data = new byte[100_003];
        new Random(5).NextBytes(data);
        var split = new Crc32();
        split.Append(data.AsSpan(0, 7));
        split.Append(data.AsSpan(7));
        using var memory = new MemoryStream();
        using (var zip = new System.IO.Compression.ZipArchive(memory, System.IO.Compression.ZipArchiveMode.Create, leaveOpen: true))
        using (var s = zip.CreateEntry("x").Open()) s.Write(data);
        memory.Position = 0;
        using var read = new System.IO.Compression.ZipArchive(memory);
        split.Value.Should().Be(read.GetEntry("x")!.Crc32).And.Be(Crc32.Compute(data));
    }
}
