using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.LoRA.Checkpoints;

namespace Microsoft.ML.LoRA.Hub;

/// <summary>
/// One repository's folder in the Hugging Face cache, laid out as the Python <c>huggingface_hub</c> library lays it out
/// so that either can reuse what the other downloaded:
/// <code>
/// {cache}/models--org--name/blobs/{etag}                 file contents, named by ETag (LFS SHA-256 or git blob id)
/// {cache}/models--org--name/blobs/{etag}.incomplete      a download in progress
/// {cache}/models--org--name/snapshots/{commit}/{file}    symbolic link to ../../blobs/{etag} (a copy where links fail)
/// {cache}/models--org--name/refs/{revision}              the commit sha a branch or tag pointed to
/// {cache}/.locks/models--org--name/{etag}.lock           held while a blob is written
/// </code>
/// </summary>
internal sealed partial class HubCache
{
    public HubCache(string cacheDirectory, HubModelId id)
    {
        Root = Path.GetFullPath(cacheDirectory);
        Id = id;
        RepoFolder = Path.Combine(Root, id.CacheFolderName);
    }

    public string Root { get; }

    public HubModelId Id { get; }

    /// <summary><c>{cache}/models--org--name</c>.</summary>
    public string RepoFolder { get; }

    public string BlobPath(string etag) => Path.Combine(RepoFolder, "blobs", CheckEtag(etag));

    public string IncompletePath(string etag) => BlobPath(etag) + ".incomplete";

    public string LockPath(string etag) => Path.Combine(Root, ".locks", Id.CacheFolderName, CheckEtag(etag) + ".lock");

    public string SnapshotFolder(string commit) => Path.Combine(RepoFolder, "snapshots", commit);

    public string SnapshotEntry(string commit, string file) => Path.Combine(SnapshotFolder(commit), file);

    string RefPath(string revision) => Path.Combine(new[] { RepoFolder, "refs" }.Concat(revision.Split('/')).ToArray());

    /// <summary>The commit a revision stands for in the cache: itself when it is a commit sha, else the content of refs/{revision}.</summary>
    public string? ResolveCommit(string revision)
    {
        if (HubModelId.IsCommitSha(revision)) return revision;
        var path = RefPath(revision);
        if (!File.Exists(path)) return null;
        var commit = File.ReadAllText(path).Trim();
        return HubModelId.IsCommitSha(commit) ? commit : null;
    }

    /// <summary>Records that <paramref name="revision"/> points to <paramref name="commit"/> (atomically).</summary>
    public void WriteRef(string revision, string commit)
    {
        if (HubModelId.IsCommitSha(revision)) return;
        var path = RefPath(revision);
        if (File.Exists(path) && File.ReadAllText(path).Trim() == commit) return;
        AtomicFile.WriteAllText(path, commit);
    }

    /// <summary>True when a snapshot entry exists and, if it is a link, the blob it points to exists.</summary>
    public static bool EntryExists(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is not null)
            return info.ResolveLinkTarget(returnFinalTarget: true) is { Exists: true };
        return info.Exists;
    }

    /// <summary>
    /// Makes <c>snapshots/{commit}/{file}</c> point at the blob: a relative symbolic link as Hugging Face makes it, or a
    /// copy where the file system refuses links. The entry appears atomically.
    /// </summary>
    public void Link(string commit, string file, string etag)
    {
        var entry = SnapshotEntry(commit, file);
        var folder = Path.GetDirectoryName(entry)!;
        Directory.CreateDirectory(folder);
        var temp = Path.Combine(folder, $".{file}.{Guid.NewGuid():N}.tmp");
        try
        {
            File.CreateSymbolicLink(temp, Path.Combine("..", "..", "blobs", etag));
            File.Move(temp, entry, overwrite: true);
            return;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            try { File.Delete(temp); } catch (IOException) { }
        }
        var blob = BlobPath(etag);
        AtomicFile.Write(entry, target =>
        {
            using var source = new FileStream(blob, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            source.CopyTo(target);
        });
    }

    /// <summary>
    /// Checks that a snapshot holds a usable model: config.json and complete weights (every shard of an index).
    /// Returns the missing files (empty when usable).
    /// </summary>
    public IReadOnlyList<string> MissingFromSnapshot(string commit)
    {
        var missing = new List<string>();
        if (!EntryExists(SnapshotEntry(commit, "config.json"))) missing.Add("config.json");
        var weights = CheckpointFolder.WeightFileNames.FirstOrDefault(n => EntryExists(SnapshotEntry(commit, n)));
        if (weights is null)
            missing.Add($"weights ({string.Join(" or ", CheckpointFolder.WeightFileNames)})");
        else if (HubFileSelection.IsIndex(weights))
            missing.AddRange(ShardsNamedBy(SnapshotEntry(commit, weights)).Where(s => !EntryExists(SnapshotEntry(commit, s))));
        return missing;
    }

    static IEnumerable<string> ShardsNamedBy(string indexPath)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(indexPath));
            if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                return new[] { $"{Path.GetFileName(indexPath)} (no weight_map)" };
            return map.EnumerateObject().Where(e => e.Value.ValueKind == JsonValueKind.String)
                .Select(e => e.Value.GetString()!).Where(HubFileSelection.IsPlainFileName).Distinct().ToList();
        }
        catch (JsonException)
        {
            return new[] { $"{Path.GetFileName(indexPath)} (not valid JSON)" };
        }
    }

    /// <summary>Rejects ETags that are unfit as file names (the Hub's are hex digests).</summary>
    public static string CheckEtag(string etag) =>
        EtagPattern().IsMatch(etag) ? etag : throw new HubException($"The Hub gave an unusable ETag '{etag}' (expected a hex digest).");

    [GeneratedRegex("^[A-Za-z0-9_-]{1,128}$")]
    private static partial Regex EtagPattern();
}
