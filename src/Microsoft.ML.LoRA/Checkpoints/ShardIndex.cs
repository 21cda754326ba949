using System.Text.Json;

namespace Microsoft.ML.LoRA.Checkpoints;

/// <summary>
/// The index of a sharded checkpoint (<c>model.safetensors.index.json</c> or <c>pytorch_model.bin.index.json</c>):
/// its <c>weight_map</c> names, for each tensor, the shard file in the same folder that holds it. Shard names are
/// checked to be plain file names (no folders, no <c>..</c>) and every shard must exist.
/// </summary>
internal sealed class ShardIndex
{
    /// <summary>Largest index file read (real ones are well under 1 MB).</summary>
    public const long MaxIndexBytes = 64L * 1024 * 1024;

    ShardIndex(string indexPath, IReadOnlyList<string> shardPaths, IReadOnlyDictionary<string, string> shardOf)
    {
        IndexPath = indexPath;
        ShardPaths = shardPaths;
        ShardOf = shardOf;
    }

    /// <summary>Full path of the index file.</summary>
    public string IndexPath { get; }

    /// <summary>Full paths of the shards, each once, in ordinal order of their names.</summary>
    public IReadOnlyList<string> ShardPaths { get; }

    /// <summary>Tensor name → shard file name, as the weight_map says.</summary>
    public IReadOnlyDictionary<string, string> ShardOf { get; }

    /// <summary>Reads and checks an index file.</summary>
    public static ShardIndex Read(string indexPath)
    {
        var full = Path.GetFullPath(indexPath);
        if (!File.Exists(full)) throw new FileNotFoundException($"Index not found: {full}", full);
        var folder = Path.GetDirectoryName(full)!;
        long length = new FileInfo(full).Length;
        if (length > MaxIndexBytes)
            throw new CheckpointFormatException(full, $"index is {length} bytes; more than the {MaxIndexBytes}-byte limit");
        var shardOf = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(full));
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new CheckpointFormatException(full, "index is not a JSON object");
            if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new CheckpointFormatException(full, "index has no weight_map object");
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new CheckpointFormatException(full, $"weight_map gives {entry.Value.GetRawText()} for '{entry.Name}', not a shard file name");
                var shard = entry.Value.GetString()!;
                if (!IsPlainFileName(shard))
                    throw new CheckpointFormatException(full,
                        $"weight_map names the shard '{shard}' for '{entry.Name}'; a shard must be a file name in the index's folder, without folders or '..'");
                if (!shardOf.TryAdd(entry.Name, shard))
                    throw new CheckpointFormatException(full, $"weight_map lists '{entry.Name}' twice");
            }
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(full, $"index is not valid JSON ({e.Message})");
        }
        if (shardOf.Count == 0) throw new CheckpointFormatException(full, "weight_map is empty");
        var shards = shardOf.Values.Distinct().OrderBy(s => s, StringComparer.Ordinal).ToList();
        foreach (var shard in shards)
        {
            if (File.Exists(Path.Combine(folder, shard))) continue;
            var example = shardOf.First(p => p.Value == shard).Key;
            throw new CheckpointFormatException(full,
                $"weight_map puts tensors (e.g. '{example}') in the shard '{shard}', but {Path.Combine(folder, shard)} does not exist");
        }
        return new ShardIndex(full, shards.Select(s => Path.Combine(folder, s)).ToList(), shardOf);
    }

    /// <summary>
    /// Checks every tensor the weight_map lists is in the shard it names; <paramref name="fileHolding"/> gives the
    /// full path of the shard that actually holds a tensor, or null.
    /// </summary>
    public void Verify(Func<string, string?> fileHolding)
    {
        foreach (var (name, shard) in ShardOf)
        {
            var actual = fileHolding(name);
            if (actual is null)
                throw new CheckpointFormatException(IndexPath, $"weight_map puts '{name}' in {shard}, but no shard holds it");
            if (!string.Equals(Path.GetFileName(actual), shard, StringComparison.Ordinal))
                throw new CheckpointFormatException(IndexPath, $"weight_map puts '{name}' in {shard}, but it is in {Path.GetFileName(actual)}");
        }
    }

    static bool IsPlainFileName(string name) =>
        name.Length > 0 && name != "." && name != ".." && !name.Contains('/') && !name.Contains('\\')
        && name.IndexOfAny(Path.GetInvalidFileNameChars()) < 0 && !Path.IsPathRooted(name)
        && string.Equals(Path.GetFileName(name), name, StringComparison.Ordinal);
}
