using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tests.Checkpoints;

/// <summary>
/// Writes altered copies of a ../shared fixture into a temporary folder (renamed, dropped or extra tensors, sharded
/// weights, an edited config), so tests can check how loading treats them. Nothing is copied into the repository.
/// </summary>
public static class FixtureVariants
{
    /// <summary>Every tensor of a fixture, in its stored type; the caller disposes them.</summary>
    public static Dictionary<string, Tensor> ReadTensors(string family)
    {
        var file = SafeTensorsFile.Open(Path.Combine(SharedData.Fixture(family), "model.safetensors"));
        return file.Entries.ToDictionary(e => e.Name, e => file.ReadRaw(e.Name), StringComparer.Ordinal);
    }

    /// <summary>A folder with the fixture's config.json (optionally edited) and <paramref name="tensors"/> as model.safetensors.</summary>
    public static string WriteFolder(string folder, string family, IEnumerable<KeyValuePair<string, Tensor>> tensors, Action<JsonObject>? editConfig = null)
    {
        WriteConfig(folder, family, editConfig);
        SafeTensorsWriter.Save(Path.Combine(folder, "model.safetensors"), tensors);
        return folder;
    }

    /// <summary>Writes the fixture's config.json, optionally edited, into <paramref name="folder"/>.</summary>
    public static void WriteConfig(string folder, string family, Action<JsonObject>? editConfig = null)
    {
        Directory.CreateDirectory(folder);
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(SharedData.Fixture(family), "config.json")))!;
        editConfig?.Invoke(config);
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>
    /// Splits <paramref name="tensors"/> into <paramref name="shards"/> safetensors files plus a
    /// model.safetensors.index.json, as Hugging Face's save_pretrained does for large models.
    /// </summary>
    public static string WriteShardedFolder(string folder, string family, IReadOnlyDictionary<string, Tensor> tensors, int shards = 2)
    {
        WriteConfig(folder, family);
        var names = tensors.Keys.OrderBy(n => n, StringComparer.Ordinal).ToList();
        var weightMap = new JsonObject();
        for (int s = 0; s < shards; s++)
        {
            var shardName = $"model-{s + 1:00000}-of-{shards:00000}.safetensors";
            var part = names.Where((_, i) => i % shards == s).ToList();
            SafeTensorsWriter.Save(Path.Combine(folder, shardName), part.Select(n => KeyValuePair.Create(n, tensors[n])));
            foreach (var n in part) weightMap[n] = shardName;
        }
        var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = 0 }, ["weight_map"] = weightMap };
        File.WriteAllText(Path.Combine(folder, "model.safetensors.index.json"), index.ToJsonString());
        return folder;
    }

    /// <summary>The fixture's base-model prefix (bert, distilbert, roberta, transformer).</summary>
    public static string BasePrefix(string family) => family == "gpt2" ? "transformer" : family;
}
