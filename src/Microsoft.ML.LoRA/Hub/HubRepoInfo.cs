using System.Text.Json;

namespace Microsoft.ML.LoRA.Hub;

/// <summary>One file of a Hub repository as the model-info API lists it.</summary>
/// <param name="Name">Path in the repository (<c>rfilename</c>).</param>
/// <param name="Size">Size in bytes, when listed (<c>lfs.size</c>, else <c>size</c>).</param>
/// <param name="BlobId">Git object id of a file stored in git (not in LFS), when listed.</param>
/// <param name="Sha256">SHA-256 of a file stored in LFS (<c>lfs.sha256</c>), when listed.</param>
internal sealed record HubRepoFile(string Name, long? Size, string? BlobId, string? Sha256)
{
    /// <summary>The blob's name in the cache, as the Hub's ETag gives it: the LFS SHA-256, else the git blob id.</summary>
    public string? Etag => Sha256 ?? BlobId;
}

/// <summary>What <c>GET /api/models/{id}/revision/{revision}</c> says about a repository at a revision.</summary>
internal sealed record HubRepoInfo(string Commit, IReadOnlyDictionary<string, HubRepoFile> Files)
{
    /// <summary>Parses the API's JSON; throws naming the URL when it lacks <c>sha</c> or <c>siblings</c>.</summary>
    public static HubRepoInfo Parse(string json, Uri url)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new HubException($"The model info from {url} is not a JSON object.", url);
            var sha = root.TryGetProperty("sha", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
            if (!HubModelId.IsCommitSha(sha))
                throw new HubException($"The model info from {url} has no commit sha (\"sha\": {(sha is null ? "missing" : $"'{sha}'")}).", url);
            if (!root.TryGetProperty("siblings", out var siblings) || siblings.ValueKind != JsonValueKind.Array)
                throw new HubException($"The model info from {url} has no file list (\"siblings\").", url);
            var files = new Dictionary<string, HubRepoFile>(StringComparer.Ordinal);
            foreach (var sibling in siblings.EnumerateArray())
            {
                if (sibling.ValueKind != JsonValueKind.Object) continue;
                var name = String(sibling, "rfilename");
                if (string.IsNullOrEmpty(name)) continue;
                long? size = Long(sibling, "size");
                string? sha256 = null;
                if (sibling.TryGetProperty("lfs", out var lfs) && lfs.ValueKind == JsonValueKind.Object)
                {
                    sha256 = String(lfs, "sha256")?.ToLowerInvariant();
                    size = Long(lfs, "size") ?? size;
                }
                files[name] = new HubRepoFile(name, size, sha256 is null ? String(sibling, "blobId")?.ToLowerInvariant() : null, sha256);
            }
            return new HubRepoInfo(sha!, files);
        }
        catch (JsonException e)
        {
            throw new HubException($"The model info from {url} is not valid JSON ({e.Message}).", url, innerException: e);
        }
    }

    static string? String(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    static long? Long(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) && n >= 0 ? n : null;
}
