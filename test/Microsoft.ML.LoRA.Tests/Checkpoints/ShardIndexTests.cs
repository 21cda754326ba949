using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Checkpoints;

/// <summary>
/// A sharded checkpoint's index must list plain file names of shards that exist and hold the tensors it says; each
/// problem is refused naming the index and the shard, for safetensors and .bin shards alike.
/// </summary>
public sealed class ShardIndexTests : IDisposable
{
    readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    public static IEnumerable<object[]> Formats => new[] { new object[] { "safetensors" }, new object[] { "bin" } };

    /// <summary>
    /// A copy of the tiny BERT's two .bin shards (or the same tensors as two safetensors shards) with an index whose
    /// weight_map <paramref name="edit"/> may change; returns the index path.
    /// </summary>
    string ShardedCopy(string format, Action<JsonObject> edit)
    {
        var folder = Path.Combine(_dir.Path, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        var source = CheckpointAssets.TinyBertShardedBinFolder;
        var index = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(source, "pytorch_model.bin.index.json")))!;
        var map = (JsonObject)index["weight_map"]!;
        if (format == "bin")
        {
            foreach (var shard in Directory.GetFiles(source, "*-of-*.bin")) File.Copy(shard, Path.Combine(folder, Path.GetFileName(shard)));
        }
        else
        {
            var names = map.Select(p => (p.Key, (string)p.Value!)).ToList();
            foreach (var shard in names.Select(n => n.Item2).Distinct())
            {
                using var bin = PyTorchBinSource.Open(Path.Combine(source, shard));
                var tensors = bin.Names.ToDictionary(n => n, bin.ReadRaw);
                SafeTensorsWriter.Save(Path.Combine(folder, SafetensorsName(shard)), tensors);
                foreach (var t in tensors.Values) t.Dispose();
            }
            foreach (var (name, shard) in names) map[name] = SafetensorsName(shard);
        }
        edit(map);
        var indexPath = Path.Combine(folder, format == "bin" ? "pytorch_model.bin.index.json" : "model.safetensors.index.json");
        File.WriteAllText(indexPath, index.ToJsonString());
        return indexPath;
    }

    static string SafetensorsName(string binShard) => binShard.Replace("pytorch_model", "model").Replace(".bin", ".safetensors");

    static ITensorSource OpenIndex(string indexPath) =>
        indexPath.EndsWith(".bin.index.json", StringComparison.Ordinal) ? PyTorchBinSource.OpenIndex(indexPath) : SafeTensorsSource.OpenIndex(indexPath);

    static string Refusal(string indexPath)
    {
        var e = FluentActions.Invoking(() => OpenIndex(indexPath).Dispose()).Should().Throw<CheckpointFormatException>().Which;
        e.FilePath.Should().Be(indexPath);
        return e.Message;
    }

    static string FirstShard(string format) => format == "bin" ? "pytorch_model-00001-of-00002.bin" : "model-00001-of-00002.safetensors";
    static string SecondShard(string format) => format == "bin" ? "pytorch_model-00002-of-00002.bin" : "model-00002-of-00002.safetensors";

    [Theory]
    [MemberData(nameof(Formats))]
    public void An_intact_index_opens_every_shard(string format)
    {
        using var source = OpenIndex(ShardedCopy(format, _ => { }));

        source.Names.Should().HaveCount(42);
        source.Files.Should().HaveCount(2);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void A_missing_shard_is_refused_naming_it(string format)
    {
        var index = ShardedCopy(format, _ => { });
        var missing = Path.Combine(Path.GetDirectoryName(index)!, SecondShard(format));
        File.Delete(missing);

        Refusal(index).Should().Contain($"in the shard '{SecondShard(format)}', but {missing} does not exist");
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void A_weight_map_entry_pointing_at_the_wrong_shard_is_refused(string format)
    {
        var index = ShardedCopy(format, map => map["classifier.weight"] = FirstShard(format));

        Refusal(index).Should().Contain($"weight_map puts 'classifier.weight' in {FirstShard(format)}, but it is in {SecondShard(format)}");
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void A_weight_map_entry_for_a_tensor_no_shard_holds_is_refused(string format)
    {
        var index = ShardedCopy(format, map => map["bert.extra.weight"] = FirstShard(format));

        Refusal(index).Should().Contain($"weight_map puts 'bert.extra.weight' in {FirstShard(format)}, but no shard holds it");
    }

    [Theory]
    [InlineData("safetensors", "../model-00001-of-00002.safetensors")]
    [InlineData("safetensors", "sub/model-00001-of-00002.safetensors")]
    [InlineData("bin", "..\\pytorch_model-00001-of-00002.bin")]
    [InlineData("bin", "/etc/passwd")]
    [InlineData("bin", "..")]
    [InlineData("bin", "")]
    public void A_shard_name_with_a_path_separator_is_refused(string format, string shard)
    {
        var index = ShardedCopy(format, map => map["classifier.weight"] = shard);

        Refusal(index).Should().Contain($"weight_map names the shard '{shard}' for 'classifier.weight'").And.Contain("without folders or '..'");
    }

    [Theory]
    [InlineData("{\"weight_map\": [1, 2]}", "index has no weight_map object")]
    [InlineData("{\"metadata\": {}}", "index has no weight_map object")]
    [InlineData("{\"weight_map\": {}}", "weight_map is empty")]
    [InlineData("{\"weight_map\": {\"a\": 3}}", "weight_map gives 3 for 'a', not a shard file name")]
    [InlineData("{\"weight_map\": ", "index is not valid JSON")]
    [InlineData("[]", "index is not a JSON object")]
    public void A_malformed_index_is_refused(string json, string expected)
    {
        var index = Path.Combine(_dir.Path, "model.safetensors.index.json");
        File.WriteAllText(index, json);

        Refusal(index).Should().Contain(expected);
    }
}
