using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;

namespace Microsoft.ML.LoRA.Tests.Persistence;

/// <summary>Ways to damage a saved model.zip the way disks, transfers and hostile testers do.</summary>
public static class ModelZipSurgery
{
    /// <summary>
    /// Copies <paramref name="from"/> to <paramref name="to"/>, entry by entry (stored, so their bytes stay visible
    /// in the file): <paramref name="replace"/> may return new content for an entry (null drops it), and
    /// <paramref name="extra"/> entries are added at the end. Entry CRCs are those of the new content.
    /// </summary>
    public static void Rewrite(string from, string to, Func<string, byte[], byte[]?>? replace = null, Action<ZipArchive>? extra = null)
    {
        var entries = new List<(string Name, byte[] Bytes)>();
        using (var source = ZipFile.OpenRead(from))
            foreach (var entry in source.Entries)
            {
                using var s = entry.Open();
                var memory = new MemoryStream();
                s.CopyTo(memory);
                entries.Add((entry.FullName, memory.ToArray()));
            }
        using var target = new FileStream(to, FileMode.Create);
        using var zip = new ZipArchive(target, ZipArchiveMode.Create);
        foreach (var (name, bytes) in entries)
        {
            var content = replace is null ? bytes : replace(name, bytes);
            if (content is null) continue;
            var entry = zip.CreateEntry(name, CompressionLevel.NoCompression);
            using var s = entry.Open();
            s.Write(content);
        }
        extra?.Invoke(zip);
    }

    /// <summary>
    /// Copies <paramref name="from"/> to <paramref name="to"/> with <paramref name="replace"/> applied (see
    /// <see cref="Rewrite"/>) and the manifest's size and SHA-256 of each entry updated to match: a file that passes
    /// every integrity check, as one saved from such weights would.
    /// </summary>
    public static void RewriteConsistently(string from, string to, Func<string, byte[], byte[]> replace)
    {
        var changed = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        Rewrite(from, to + ".partial", (name, bytes) =>
        {
            var content = replace(name, bytes);
            changed[name] = content;
            return content;
        });
        Rewrite(to + ".partial", to, (name, bytes) =>
        {
            if (name != "lora-model.json") return bytes;
            var node = JsonNode.Parse(bytes)!.AsObject();
            var entries = node["entries"]!.AsObject();
            foreach (var (entry, content) in changed.Where(c => c.Key != name))
            {
                entries[entry]!["size"] = content.Length;
                entries[entry]!["sha256"] = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(content));
            }
            return Encoding.UTF8.GetBytes(node.ToJsonString());
        });
        File.Delete(to + ".partial");
    }

    /// <summary>The manifest without its entry table: what files saved before the table existed hold.</summary>
    public static byte[] WithoutEntryTable(byte[] manifest)
    {
        var node = JsonNode.Parse(manifest)!.AsObject();
        node.Remove("entries").Should().BeTrue("the manifest has an entry table to remove");
        return Encoding.UTF8.GetBytes(node.ToJsonString());
    }

    /// <summary>Writes a copy of <paramref name="from"/> whose manifest has no entry table (an old-format file).</summary>
    public static void StripEntryTable(string from, string to) =>
        Rewrite(from, to, (name, bytes) => name == "lora-model.json" ? WithoutEntryTable(bytes) : bytes);

    /// <summary>The content of one entry.</summary>
    public static byte[] Read(string zipPath, string name)
    {
        using var zip = ZipFile.OpenRead(zipPath);
        using var s = zip.GetEntry(name)!.Open();
        var memory = new MemoryStream();
        s.CopyTo(memory);
        return memory.ToArray();
    }

    /// <summary>
    /// Flips <paramref name="count"/> bytes at the end of a stored entry's data in the file itself, leaving the zip's
    /// CRC and sizes as they were (a damaged disk block or transfer).
    /// </summary>
    public static void FlipStoredBytes(string zipPath, string name, int count)
    {
        var content = Read(zipPath, name);
        content.Length.Should().BeGreaterThan(count + 64);
        var file = File.ReadAllBytes(zipPath);
        int at = file.AsSpan().IndexOf(content.AsSpan(0, Math.Min(content.Length, 4096)));
        at.Should().BeGreaterThan(0, "a stored entry's bytes appear verbatim in the zip");
        for (int i = content.Length - count; i < content.Length; i++) file[at + i] ^= 0x5A;
        File.WriteAllBytes(zipPath, file);
    }

    /// <summary>Adds an entry that inflates to <paramref name="length"/> zero bytes from a few hundred KB of deflate data.</summary>
    public static void AddZeros(ZipArchive zip, string name, long length)
    {
        var entry = zip.CreateEntry(name, CompressionLevel.SmallestSize);
        using var s = entry.Open();
        var zeros = new byte[1 << 20];
        for (long left = length; left > 0; left -= zeros.Length) s.Write(zeros, 0, (int)Math.Min(zeros.Length, left));
    }

    /// <summary>Makes the zip's local and central headers declare <paramref name="size"/> inflated bytes for <paramref name="name"/> (a lying header).</summary>
    public static void SetDeclaredSize(string zipPath, string name, uint size)
    {
        var file = File.ReadAllBytes(zipPath);
        var nameBytes = Encoding.UTF8.GetBytes(name);
        int patched = 0;
        for (int i = 0; i + 46 < file.Length; i++)
        {
            uint signature = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(i));
            if (signature == 0x04034b50 && NameAt(file, i + 30, BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(i + 26)), nameBytes))
            {
                BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(i + 22), size);
                patched++;
            }
            else if (signature == 0x02014b50 && NameAt(file, i + 46, BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(i + 28)), nameBytes))
            {
                BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(i + 24), size);
                patched++;
            }
        }
        patched.Should().Be(2, "the entry has one local and one central header");
        File.WriteAllBytes(zipPath, file);
    }

    static bool NameAt(byte[] file, int at, int length, byte[] name) =>
        length == name.Length && at + length <= file.Length && file.AsSpan(at, length).SequenceEqual(name);
}
