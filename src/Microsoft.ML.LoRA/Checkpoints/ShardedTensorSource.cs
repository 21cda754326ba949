using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Checkpoints;

/// <summary>The tensors of a sharded checkpoint: one source per shard, each tensor read from the shard that holds it.</summary>
internal sealed class ShardedTensorSource : ITensorSource
{
    readonly List<ITensorSource> _shards;
    readonly Dictionary<string, (ITensorSource Source, string File)> _sourceOf;

    ShardedTensorSource(List<ITensorSource> shards, Dictionary<string, (ITensorSource, string)> sourceOf, IReadOnlyList<string> files)
    {
        _shards = shards;
        _sourceOf = sourceOf;
        Files = files;
    }

    /// <summary>
    /// Opens every shard of <paramref name="index"/> with <paramref name="openShard"/>, refusing a tensor held by two
    /// shards or one that is not where the weight_map says.
    /// </summary>
    public static ShardedTensorSource Open(ShardIndex index, Func<string, ITensorSource> openShard)
    {
        var shards = new List<ITensorSource>();
        try
        {
            var sourceOf = new Dictionary<string, (ITensorSource, string)>(StringComparer.Ordinal);
            foreach (var path in index.ShardPaths)
            {
                var shard = openShard(path);
                shards.Add(shard);
                foreach (var name in shard.Names)
                    if (!sourceOf.TryAdd(name, (shard, path)))
                        throw new CheckpointFormatException(path, $"tensor '{name}' is also in {sourceOf[name].Item2}");
            }
            index.Verify(name => sourceOf.TryGetValue(name, out var s) ? s.Item2 : null);
            return new ShardedTensorSource(shards, sourceOf, index.ShardPaths);
        }
        catch
        {
            foreach (var shard in shards) shard.Dispose();
            throw;
        }
    }

    public IReadOnlyCollection<string> Names => _sourceOf.Keys;

    public IReadOnlyList<string> Files { get; }

    public long[] Shape(string name) => SourceOf(name).Shape(name);

    public ScalarType StoredType(string name) => SourceOf(name).StoredType(name);

    public Tensor ReadFloat32(string name) => SourceOf(name).ReadFloat32(name);

    public void Dispose()
    {
        foreach (var shard in _shards) shard.Dispose();
    }

    ITensorSource SourceOf(string name) =>
        _sourceOf.TryGetValue(name, out var s) ? s.Source : throw new KeyNotFoundException($"tensor '{name}' is not in the checkpoint");
}
