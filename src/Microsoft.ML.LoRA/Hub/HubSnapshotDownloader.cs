namespace Microsoft.ML.LoRA.Hub;

/// <summary>
/// Brings one revision of a model into the cache: lists the repository, fetches the files a classifier needs that the
/// snapshot lacks (reusing blobs already cached), links them into <c>snapshots/{commit}</c> and records the ref.
/// </summary>
internal sealed class HubSnapshotDownloader
{
    readonly HubModelId _id;
    readonly HubCache _cache;
    readonly HubOptions _options;
    readonly HubClient _client;

    public HubSnapshotDownloader(HubModelId id, HubCache cache, HubOptions options, HubClient client)
    {
        _id = id;
        _cache = cache;
        _options = options;
        _client = client;
    }

    /// <summary>Downloads what is missing and returns the snapshot folder.</summary>
    public async Task<string> DownloadAsync(HubRepoInfo info, CancellationToken ct)
    {
        var commit = info.Commit;
        foreach (var file in HubFileSelection.Select(_id, info))
        {
            await EnsureFileAsync(file, commit, ct).ConfigureAwait(false);
            if (HubFileSelection.IsIndex(file.Name))
                foreach (var shard in HubFileSelection.Shards(_id, info, file.Name, _cache.SnapshotEntry(commit, file.Name)))
                    await EnsureFileAsync(shard, commit, ct).ConfigureAwait(false);
        }
        _cache.WriteRef(_id.Revision, commit);
        return _cache.SnapshotFolder(commit);
    }

    async Task EnsureFileAsync(HubRepoFile file, string commit, CancellationToken ct)
    {
        if (!HubFileSelection.IsPlainFileName(file.Name))
            throw new HubException($"Model '{_id}' lists an unusable file name '{file.Name}'.");
        if (HubCache.EntryExists(_cache.SnapshotEntry(commit, file.Name))) return;

        var etag = file.Etag;
        var size = file.Size;
        if (etag is null)
        {
            var metadata = await _client.GetFileMetadataAsync(_id, commit, file.Name, ct).ConfigureAwait(false);
            etag = metadata.Etag;
            size ??= metadata.Size;
        }
        var blob = _cache.BlobPath(etag);
        if (!File.Exists(blob))
        {
            using var held = await BlobLock.AcquireAsync(blob, _cache.LockPath(etag), _options.LockTimeout, ct).ConfigureAwait(false);
            if (!File.Exists(blob))
                await _client.DownloadAsync(_id, commit, file.Name, etag, size, _cache.IncompletePath(etag), blob, ct).ConfigureAwait(false);
        }
        _cache.Link(commit, file.Name, etag);
    }
}
