namespace Microsoft.ML.LoRA.Hub;

/// <summary>
/// Turns the model argument users give (a local folder, or a Hugging Face Hub id such as
/// <c>google/bert_uncased_L-2_H-128_A-2</c> or <c>org/name@revision</c>) into a local model folder, downloading from
/// the Hub into the shared Hugging Face cache the first time. See docs/hub.md.
/// </summary>
public static class ModelLocator
{
    /// <summary>
    /// Returns a local folder holding the model.
    /// <list type="bullet">
    /// <item>An existing directory is returned as given, without any network access.</item>
    /// <item>A Hub id is looked up in the cache and downloaded when missing; the snapshot folder
    /// (<c>{cache}/models--org--name/snapshots/{commit}</c>) is returned. With a branch or tag one request checks which
    /// commit it points to; a cached commit sha needs no request.</item>
    /// <item>In offline mode (<c>HF_HUB_OFFLINE=1</c> or <see cref="HubOptions.Offline"/>) only the cache is used.</item>
    /// </list>
    /// </summary>
    /// <exception cref="ArgumentException">The argument is neither an existing folder nor a Hub id.</exception>
    /// <exception cref="HubException">The model could not be found, reached, downloaded or verified; the message says why.</exception>
    public static string Resolve(string modelOrId, HubOptions? options = null, CancellationToken ct = default) =>
        Task.Run(() => ResolveAsync(modelOrId, options, ct), CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>Asynchronous <see cref="Resolve"/>.</summary>
    public static async Task<string> ResolveAsync(string modelOrId, HubOptions? options = null, CancellationToken ct = default)
    {
        if (string.IsNullOrWhiteSpace(modelOrId))
            throw new ArgumentException("No model was given: pass a local model folder or a Hugging Face Hub id such as 'org/name'.", nameof(modelOrId));
        if (Directory.Exists(modelOrId)) return modelOrId;
        if (File.Exists(modelOrId))
            throw new ArgumentException($"'{modelOrId}' is a file; pass the folder that holds config.json and the weights, or a Hub id.", nameof(modelOrId));
        if (!HubModelId.TryParse(modelOrId, out var id, out var why))
            throw new ArgumentException(
                $"There is no folder '{Path.GetFullPath(modelOrId)}', and '{modelOrId}' is not a Hugging Face Hub id ({why}). "
                + "Pass a model folder, or an id such as 'google/bert_uncased_L-2_H-128_A-2' or 'org/name@revision'.", nameof(modelOrId));

        options ??= new HubOptions();
        var cache = new HubCache(options.ResolveCacheDirectory(), id);
        if (options.ResolveOffline()) return FromCacheOffline(id, cache);
        if (id.RevisionIsCommit && cache.MissingFromSnapshot(id.Revision).Count == 0) return cache.SnapshotFolder(id.Revision);

        using var client = new HubClient(options);
        HubRepoInfo info;
        try
        {
            info = await client.GetRepoInfoAsync(id, ct).ConfigureAwait(false);
        }
        catch (HubException e) when (e.IsUnavailable && CachedSnapshot(id, cache) is { } cached)
        {
            return cached;   // the Hub is unreachable, but this revision was fully downloaded before
        }
        return await new HubSnapshotDownloader(id, cache, options, client).DownloadAsync(info, ct).ConfigureAwait(false);
    }

    static string? CachedSnapshot(HubModelId id, HubCache cache) =>
        cache.ResolveCommit(id.Revision) is { } commit && cache.MissingFromSnapshot(commit).Count == 0 ? cache.SnapshotFolder(commit) : null;

    static string FromCacheOffline(HubModelId id, HubCache cache)
    {
        var howTo = $"Offline mode is on (HF_HUB_OFFLINE or HubOptions.Offline): download it once with network access "
            + $"(run without offline mode, or `huggingface-cli download {id.RepoId} --revision {id.Revision}`), or pass a local model folder.";
        var commit = cache.ResolveCommit(id.Revision);
        if (commit is null)
            throw new HubException($"Model '{id}' is not cached: {cache.RepoFolder} has no snapshot for revision '{id.Revision}'. {howTo}");
        var missing = cache.MissingFromSnapshot(commit);
        if (missing.Count > 0)
            throw new HubException($"Model '{id}' is not cached completely: {cache.SnapshotFolder(commit)} lacks {string.Join(", ", missing)}. {howTo}");
        return cache.SnapshotFolder(commit);
    }
}
