using System.Buffers.Binary;
using System.Diagnostics;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;
using Xunit.Abstractions;

namespace Microsoft.ML.LoRA.Tests.Checkpoints;

/// <summary>
/// Thousands of deterministic mutations of torch.save archives — of the zip bytes, of the pickle inside (re-zipped so
/// the unpickler sees it), of its integers and of the storage entries: opening each and reading every tensor either
/// works or throws <see cref="CheckpointFormatException"/>, and no tensor is larger than the archive can hold.
/// </summary>
public sealed class PyTorchBinFuzzTests(ITestOutputHelper output) : IDisposable
{
    const int Cases = 4000;

    /// <summary>Deflate expands at most ~1032:1, so no tensor may be larger than that many times the file.</summary>
    const long MaxExpansion = 1033;

    readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    sealed record Base(byte[] Zip, List<(string Name, byte[] Data)> Entries, string Prefix);

    [Fact]
    public void Mutated_bin_files_are_read_or_refused_with_CheckpointFormatException()
    {
        var clock = Stopwatch.StartNew();
        var bases = new[]
        {
            CheckpointAssets.DTypesBin, CheckpointAssets.DTypesBigEndianBin,
            Path.Combine(CheckpointAssets.TinyBertShardedBinFolder, "pytorch_model-00002-of-00002.bin"),
        }.Select(path =>
        {
            var entries = TorchArchive.ReadEntries(path);
            return new Base(File.ReadAllBytes(path), entries, TorchArchive.Prefix(entries));
        }).ToArray();
        var mutator = new ByteMutator(seed: 16_06_2020);
        var harness = new FuzzHarness(_dir.File("fuzz.bin"), output);

        for (int i = 0; i < Cases; i++)
        {
            var (kind, bytes) = Mutate(mutator, bases[i % bases.Length], i);
            harness.Run(kind, bytes, ReadEverything, MaxExpansion);
        }

        output.WriteLine($"whole test (mutating, zipping, writing and reading): {clock.Elapsed.TotalSeconds:F1} s");
        harness.Report();
        harness.Failures.Should().BeEmpty();
        harness.SlowestCase.Should().BeLessThan(TimeSpan.FromSeconds(5), "no input makes the reader hang");
        harness.Succeeded.Should().BeGreaterThan(0);
        harness.Rejected.Should().BeGreaterThan(Cases / 2);
        harness.MaxManagedBytesPerCase.Should().BeLessThan(8L << 20, "sizes are checked against the archive before allocating");
    }

    static long ReadEverything(string path)
    {
        using var source = PyTorchBinSource.Open(path);
        long largest = 0;
        foreach (var name in source.Names)
        {
            using var raw = source.ReadRaw(name);
            largest = Math.Max(largest, raw.numel() * raw.element_size());
            using var widened = source.ReadFloat32(name);
        }
        return largest;
    }

    static (string Kind, byte[] Bytes) Mutate(ByteMutator m, Base b, int i)
    {
        var pickleName = b.Prefix + "/data.pkl";
        var pickle = b.Entries.Single(e => e.Name == pickleName).Data;
        byte[] WithPickle(byte[] p) => TorchArchive.Build(b.Entries.Select(e => e.Name == pickleName ? (e.Name, p) : e));
        switch (i % 12)
        {
            case 0: return ("zip bit flips", m.FlipBits(b.Zip));
            case 1: return ("zip truncation", m.Truncate(b.Zip));
            case 2: return ("zip garbage insertion", m.InsertGarbage(b.Zip));
            case 3: return ("zip range deletion", m.DeleteRange(b.Zip));
            case 4: return ("pickle bit flips", WithPickle(m.FlipBits(pickle)));
            case 5: return ("pickle opcode swap", WithPickle(SwapOpcode(m, pickle)));
            case 6: return ("pickle garbage insertion", WithPickle(m.InsertGarbage(pickle)));
            case 7: return ("pickle range deletion", WithPickle(m.DeleteRange(pickle)));
            case 8: return ("pickle truncation", WithPickle(m.Truncate(pickle)));
            case 9: return ("pickle integer edit", WithPickle(EditInteger(m, pickle)));
            case 10: return ("storage entry edit", TorchArchive.Build(EditStorages(m, b)));
            default: return ("central directory flips", FlipCentralDirectory(m, b.Zip));
        }
    }

    /// <summary>Overwrites one byte with a pickle opcode (including ones the reader refuses).</summary>
    static byte[] SwapOpcode(ByteMutator m, byte[] pickle)
    {
        const string opcodes = "()}]NKJMXqrhjtsuaebRQc.0123lduitoVSIFGPgp\x80\x85\x86\x87\x88\x89\x8a\x8b\x8c\x93\x94\x95\x81\x82";
        var copy = (byte[])pickle.Clone();
        copy[m.Random.Next(copy.Length)] = (byte)opcodes[m.Random.Next(opcodes.Length)];
        return copy;
    }

    /// <summary>Finds a BININT1/BININT2/BININT opcode and gives it an extreme or nearby operand.</summary>
    static byte[] EditInteger(ByteMutator m, byte[] pickle)
    {
        var copy = (byte[])pickle.Clone();
        for (int attempt = 0; attempt < 64; attempt++)
        {
            int at = m.Random.Next(copy.Length - 5);
            switch ((char)copy[at])
            {
                case 'K':
                    copy[at + 1] = (byte)(m.Random.Next(2) == 0 ? m.Random.Next(256) : copy[at + 1] + m.Random.Next(-2, 3));
                    return copy;
                case 'M':
                    BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(at + 1), (ushort)m.Random.Next(65536));
                    return copy;
                case 'J':
                case 'X':
                case 'r':
                case 'j':
                    int[] values = { 0, -1, 1, int.MaxValue, int.MinValue, 1 << 30, 1 << 20, m.Random.Next() };
                    BinaryPrimitives.WriteInt32LittleEndian(copy.AsSpan(at + 1), values[m.Random.Next(values.Length)]);
                    return copy;
            }
        }
        return copy;
    }

    /// <summary>Truncates, extends, drops, duplicates or renames a storage entry, or adds a byteorder record.</summary>
    static List<(string Name, byte[] Data)> EditStorages(ByteMutator m, Base b)
    {
        var entries = b.Entries.ToList();
        var storages = Enumerable.Range(0, entries.Count).Where(k => entries[k].Name.Contains("/data/", StringComparison.Ordinal)).ToList();
        int k = storages[m.Random.Next(storages.Count)];
        var (name, data) = entries[k];
        switch (m.Random.Next(6))
        {
            case 0: entries[k] = (name, data[..m.Random.Next(data.Length + 1)]); break;
            case 1: entries[k] = (name, [.. data, .. new byte[m.Random.Next(1, 64)]]); break;
            case 2: entries.RemoveAt(k); break;
            case 3: entries.Add((name, data)); break;
            case 4: entries[k] = (name + "x", data); break;
            default:
                string[] orders = { "little", "big", "", "LITTLE", "big\n", new string('b', 40) };
                entries.Add((b.Prefix + "/byteorder", ByteMutator.Bytes(orders[m.Random.Next(orders.Length)])));
                break;
        }
        return entries;
    }

    /// <summary>Flips bits in the central directory and end record, where sizes, offsets and methods live.</summary>
    static byte[] FlipCentralDirectory(ByteMutator m, byte[] zip)
    {
        int central = zip.AsSpan().IndexOf("PK\x01\x02"u8);
        return m.FlipBits(zip, central, zip.Length);
    }
}
