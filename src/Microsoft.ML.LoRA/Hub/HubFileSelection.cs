using System.Text.Json;
using Microsoft.ML.LoRA.Checkpoints;

namespace Microsoft.ML.LoRA.Hub;

/// <summary>
/// Chooses the files of a Hub repository that a text classifier needs: <c>config.json</c>, the tokenizer files present,
/// and one set of weights (safetensors preferred; <c>pytorch_model.bin</c> only when there are no safetensors).
/// </summary>
internal static class HubFileSelection
{
    /// <summary>Tokenizer files fetched when the repository has them.</summary>
    public static readonly string[] TokenizerFileNames =
    {
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
        "vocab.txt", "vocab.json", "merges.txt", "tokenizer.model", "spm.model",
    };

    /// <summary>
    /// The files to fetch, in order: config, tokenizer files, then the weights (a single file or an index whose shards
    /// follow it). Weights come last so that a snapshot whose weights are complete is complete.
    /// </summary>
    public static IReadOnlyList<HubRepoFile> Select(HubModelId id, HubRepoInfo info)
    {
        if (!info.Files.TryGetValue("config.json", out var config))
            throw new HubException($"Model '{id}' (commit {info.Commit}) has no config.json, so it is not a transformers model repository.");
        var chosen = new List<HubRepoFile> { config };
        chosen.AddRange(TokenizerFileNames.Where(info.Files.ContainsKey).Select(n => info.Files[n]));
        var weights = CheckpointFolder.WeightFileNames.FirstOrDefault(info.Files.ContainsKey)
            ?? throw new HubException($"Model '{id}' (commit {info.Commit}) has no weights: none of {string.Join(", ", CheckpointFolder.WeightFileNames)}.");
        chosen.Add(info.Files[weights]);
        return chosen;
    }

    /// <summary>True for a weights index (<c>*.index.json</c>) whose shards must be fetched too.</summary>
    public static bool IsIndex(string name) => name.EndsWith(".index.json", StringComparison.Ordinal);

    /// <summary>The shards named by a downloaded index's <c>weight_map</c>; each must be a top-level file of the repository.</summary>
    public static IReadOnlyList<HubRepoFile> Shards(HubModelId id, HubRepoInfo info, string indexName, string indexPath)
    {
        var shards = new SortedSet<string>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(indexPath));
            if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new HubException($"{indexName} of model '{id}' ({indexPath}) has no weight_map object.");
            foreach (var entry in map.EnumerateObject())
                if (entry.Value.ValueKind == JsonValueKind.String) shards.Add(entry.Value.GetString()!);
        }
        catch (JsonException e)
        {
            throw new HubException($"{indexName} of model '{id}' ({indexPath}) is not valid JSON ({e.Message}).", innerException: e);
        }
        if (shards.Count == 0) throw new HubException($"{indexName} of model '{id}' ({indexPath}) names no shards.");
        var files = new List<HubRepoFile>();
        foreach (var shard in shards)
        {
            if (!IsPlainFileName(shard))
                throw new HubException($"{indexName} of model '{id}' names an invalid shard '{shard}'.");
            if (!info.Files.TryGetValue(shard, out var file))
                throw new HubException($"{indexName} of model '{id}' names shard '{shard}', which the repository (commit {info.Commit}) does not have.");
            files.Add(file);
        }
        return files;
    }

    /// <summary>A top-level file name that is safe to use as a path in a snapshot folder.</summary>
    public static bool IsPlainFileName(string name) =>
        name.Length > 0 && !name.StartsWith('.') && name.IndexOfAny(new[] { '/', '\\', ':', '\0' }) < 0;
}
