using System.IO.Compression;

namespace Microsoft.ML.LoRA.Tests.Checkpoints;

/// <summary>Reads and writes torch.save-layout zip archives in tests (to re-compress, rename or tamper with entries).</summary>
public static class TorchArchive
{
    /// <summary>Every entry of a zip, in order.</summary>
    public static List<(string Name, byte[] Data)> ReadEntries(string path)
    {
        using var zip = ZipFile.OpenRead(path);
        return zip.Entries.Select(e =>
        {
            using var s = e.Open();
            var data = new byte[e.Length];
            s.ReadExactly(data);
            return (e.FullName, data);
        }).ToList();
    }

    /// <summary>A zip holding <paramref name="entries"/>, as bytes.</summary>
    public static byte[] Build(IEnumerable<(string Name, byte[] Data)> entries, CompressionLevel level = CompressionLevel.NoCompression)
    {
        using var memory = new MemoryStream();
        using (var zip = new ZipArchive(memory, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, data) in entries)
            {
                using var s = zip.CreateEntry(name, level).Open();
                s.Write(data);
            }
        }
        return memory.ToArray();
    }

    /// <summary>A torch.save-style archive: <c>prefix/data.pkl</c>, <c>prefix/data/&lt;key&gt;</c> storages, <c>prefix/version</c>.</summary>
    public static byte[] Build(byte[] pickle, IReadOnlyDictionary<string, byte[]>? storages = null, string prefix = "archive") =>
        Build(new[] { ($"{prefix}/data.pkl", pickle) }
            .Concat((storages ?? new Dictionary<string, byte[]>()).Select(s => ($"{prefix}/data/{s.Key}", s.Value)))
            .Append(($"{prefix}/version", "3\n"u8.ToArray())));

    /// <summary>
    /// Copies an archive with another compression level, optionally renaming its record folder to
    /// <paramref name="prefix"/>.
    /// </summary>
    public static void Rewrite(string source, string target, CompressionLevel level, string? prefix = null)
    {
        var entries = ReadEntries(source);
        if (prefix != null) entries = entries.Select(e => (prefix + e.Name[e.Name.IndexOf('/')..], e.Data)).ToList();
        File.WriteAllBytes(target, Build(entries, level));
    }

    /// <summary>The record folder of an archive's data.pkl (e.g. "dtypes").</summary>
    public static string Prefix(IEnumerable<(string Name, byte[] Data)> entries) =>
        entries.Select(e => e.Name).Single(n => n.EndsWith("/data.pkl", StringComparison.Ordinal))[..^"/data.pkl".Length];
}
