using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tests.Checkpoints;

/// <summary>
/// Thousands of deterministic mutations of valid safetensors files: opening each and reading every tensor either
/// works or throws <see cref="CheckpointFormatException"/> — never another exception, never a tensor larger than the
/// file, never megabytes of managed memory.
/// </summary>
public sealed class SafeTensorsFuzzTests(ITestOutputHelper output) : IDisposable
{
    const int Cases = 6000;
    readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Mutated_safetensors_files_are_read_or_refused_with_CheckpointFormatException()
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var bases = new[] { WriterMadeFile(), File.ReadAllBytes(CheckpointAssets.DTypesSafetensors) };
        var mutator = new ByteMutator(seed: 20240611);
        var harness = new FuzzHarness(_dir.File("fuzz.safetensors"), output);

        for (int i = 0; i < Cases; i++)
        {
            var original = bases[i % bases.Length];
            var (kind, bytes) = Mutate(mutator, original, i);
            harness.Run(kind, bytes, ReadEverything);
        }

        output.WriteLine($"whole test (mutating, writing and reading): {sw.Elapsed.TotalSeconds:F1} s");
        harness.Report();
        harness.Failures.Should().BeEmpty();
        harness.SlowestCase.Should().BeLessThan(TimeSpan.FromSeconds(5), "no input makes the reader hang");
        harness.Cases.Should().Be(Cases);
        harness.Succeeded.Should().BeGreaterThan(0, "some mutations (in the data section) leave a readable file");
        harness.Rejected.Should().BeGreaterThan(Cases / 2);
        harness.MaxManagedBytesPerCase.Should().BeLessThan(4L << 20, "a reader checks sizes against the file before allocating");
    }

    static long ReadEverything(string path)
    {
        var file = SafeTensorsFile.Open(path);
        long largest = 0;
        foreach (var entry in file.Entries)
        {
            using var raw = file.ReadRaw(entry.Name);
            largest = Math.Max(largest, raw.numel() * raw.element_size());
            using var widened = file.ReadFloat32(entry.Name);
        }
        return largest;
    }

    static (string Kind, byte[] Bytes) Mutate(ByteMutator m, byte[] original, int i)
    {
        int headerLength = (int)BitConverter.ToUInt64(original, 0);
        int headerEnd = 8 + headerLength;
        switch (i % 9)
        {
            case 0: return ("bit flips (header)", m.FlipBits(original, 0, headerEnd));
            case 1: return ("bit flips (anywhere)", m.FlipBits(original));
            case 2: return ("truncation", m.Truncate(original));
            case 3: return ("garbage insertion", m.InsertGarbage(original, 8, headerEnd));
            case 4: return ("range deletion", m.DeleteRange(original, 8, headerEnd));
            case 5: return ("length prefix", WithPrefix(original, LengthPrefix(m, original.Length, headerLength)));
            case 6: return ("header number edit", EditHeader(m, original, m.EditNumber));
            case 7: return ("header string edit", EditHeader(m, original, m.EditString));
            default: return ("header slice duplicate", EditHeader(m, original, m.DuplicateSlice));
        }
    }

    static ulong LengthPrefix(ByteMutator m, int fileLength, int headerLength)
    {
        ulong[] candidates =
        {
            0, 1, 7, 8, (ulong)headerLength - 1, (ulong)headerLength + 1, (ulong)fileLength - 8, (ulong)fileLength - 7,
            (ulong)fileLength, 100UL << 20, (100UL << 20) + 1, int.MaxValue, uint.MaxValue, long.MaxValue, ulong.MaxValue,
            (ulong)m.Random.NextInt64(),
        };
        return candidates[m.Random.Next(candidates.Length)];
    }

    static byte[] WithPrefix(byte[] original, ulong prefix)
    {
        var copy = (byte[])original.Clone();
        BitConverter.GetBytes(prefix).CopyTo(copy, 0);
        return copy;
    }

    /// <summary>Edits the header text; usually fixes the length prefix to match, sometimes leaves it stale.</summary>
    static byte[] EditHeader(ByteMutator m, byte[] original, Func<string, string> edit)
    {
        int headerLength = (int)BitConverter.ToUInt64(original, 0);
        var header = ByteMutator.Text(original[8..(8 + headerLength)]);
        var edited = ByteMutator.Bytes(edit(header));
        var data = original[(8 + headerLength)..];
        ulong? prefix = m.Random.Next(4) == 0 ? (ulong)headerLength : null;
        return SafeTensorsBytes.Build(edited, data, prefix);
    }

    byte[] WriterMadeFile()
    {
        using var scope = torch.NewDisposeScope();
        var path = _dir.File("base.safetensors");
        SafeTensorsWriter.Save(path, new Dictionary<string, Tensor>
        {
            ["layer.weight"] = torch.linspace(-1, 1, 12).reshape(3, 4),
            ["layer.bias"] = torch.ones(3).to_type(ScalarType.Float16),
            ["embeddings"] = torch.linspace(0, 5, 10).reshape(5, 2).to_type(ScalarType.BFloat16),
            ["ids"] = torch.arange(4, dtype: ScalarType.Int64),
            ["mask"] = torch.tensor(new[] { true, false }),
            ["scalar"] = torch.tensor(2.5f),
            ["empty"] = torch.zeros(0, 4),
        }, new Dictionary<string, string> { ["format"] = "pt" });
        return File.ReadAllBytes(path);
    }
}
