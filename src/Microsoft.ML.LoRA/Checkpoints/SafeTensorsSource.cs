using System.Text.Json;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Checkpoints;

/// <summary>Tensors from one or more safetensors files (a single <c>model.safetensors</c> or a sharded set).</summary>
public sealed class SafeTensorsSource : ITensorSource
{
    readonly Dictionary<string, SafeTensorsFile> _fileOf = new(StringComparer.Ordinal);

    SafeTensorsSource(IReadOnlyList<string> files)
    {
        Files = files;
        foreach (var path in files)
        {
            var file = SafeTensorsFile.Open(path);
            foreach (var e in file.Entries)
                if (!_fileOf.TryAdd(e.Name, file))
                    throw new CheckpointFormatException(path, $"tensor '{e.Name}' is also in {_fileOf[e.Name].Path}");
        }
    }

    /// <summary>Opens one safetensors file.</summary>
    public static SafeTensorsSource OpenFile(string path) => new(new[] { path });

    /// <summary>Opens the shards listed in a <c>model.safetensors.index.json</c> (its <c>weight_map</c>).</summary>
    public static SafeTensorsSource OpenIndex(string indexPath)
    {
        if (!File.Exists(indexPath)) throw new FileNotFoundException($"Index not found: {indexPath}", indexPath);
        var folder = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        var shards = new SortedSet<string>(StringComparer.Ordinal);
        var expected = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(indexPath));
            if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new CheckpointFormatException(indexPath, "has no weight_map object");
            foreach (var entry in map.EnumerateObject())
            {
                var shard = entry.Value.GetString();
                if (string.IsNullOrEmpty(shard) || shard.Contains('/') || shard.Contains('\\') || shard.StartsWith('.'))
                    throw new CheckpointFormatException(indexPath, $"weight_map names an invalid shard '{shard}' for '{entry.Name}'");
                shards.Add(shard);
                expected[entry.Name] = shard;
            }
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(indexPath, $"not valid JSON ({e.Message})");
        }
        var paths = shards.Select(s => Path.Combine(folder, s)).ToList();
        foreach (var p in paths)
            if (!File.Exists(p)) throw new FileNotFoundException($"Shard listed in {Path.GetFileName(indexPath)} is missing: {p}", p);
        var source = new SafeTensorsSource(paths);
        foreach (var (name, shard) in expected)
            if (!source._fileOf.TryGetValue(name, out var file) || Path.GetFileName(file.Path) != shard)
                throw new CheckpointFormatException(indexPath, $"weight_map says '{name}' is in {shard}, but it is not there");
        return source;
    }

    public IReadOnlyList<string> Files { get; }

    public IReadOnlyCollection<string> Names => _fileOf.Keys;

    public long[] Shape(string name) => FileHolding(name)[name].Shape;

    public Tensor ReadFloat32(string name) => FileHolding(name).ReadFloat32(name);

    SafeTensorsFile FileHolding(string name) =>
        _fileOf.TryGetValue(name, out var f) ? f : throw new KeyNotFoundException($"tensor '{name}' is not in the checkpoint");

    public void Dispose() { }
}
