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

    /// <summary>
    /// Opens the shards listed in a <c>model.safetensors.index.json</c> (its <c>weight_map</c>) and checks each tensor
    /// is in the shard the index names.
    /// </summary>
    public static SafeTensorsSource OpenIndex(string indexPath)
    {
        var index = ShardIndex.Read(indexPath);
        var source = new SafeTensorsSource(index.ShardPaths);
        index.Verify(name => source._fileOf.TryGetValue(name, out var file) ? file.Path : null);
        return source;
    }

    /// <inheritdoc/>
    public IReadOnlyList<string> Files { get; }

    /// <inheritdoc/>
    public IReadOnlyCollection<string> Names => _fileOf.Keys;

    /// <inheritdoc/>
    public long[] Shape(string name) => FileHolding(name)[name].Shape;

    /// <inheritdoc/>
    public ScalarType StoredType(string name) => SafeTensorsFile.ToScalarType(FileHolding(name)[name].DType);

    /// <inheritdoc/>
    public Tensor ReadFloat32(string name) => FileHolding(name).ReadFloat32(name);

    SafeTensorsFile FileHolding(string name) =>
        _fileOf.TryGetValue(name, out var f) ? f : throw new KeyNotFoundException($"tensor '{name}' is not in the checkpoint");

    /// <summary>Nothing to release: each read opens and closes its file.</summary>
    public void Dispose() { }
}
