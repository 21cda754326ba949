using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Hub;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Hub;

/// <summary>
/// A fake Hub serving the shared BERT fixture as <see cref="RepoId"/>, an empty cache folder, and options that point at
/// both, with short timeouts and retry delays and no influence from the process environment.
/// </summary>
internal sealed class HubTestBed : IDisposable
{
    public const string RepoId = "google/bert_uncased_L-2_H-128_A-2";

    static readonly Lazy<IReadOnlyDictionary<string, byte[]>> Bert = new(() => new Dictionary<string, byte[]>
    {
        ["config.json"] = File.ReadAllBytes(Path.Combine(SharedData.Fixture("bert"), "config.json")),
        ["model.safetensors"] = File.ReadAllBytes(Path.Combine(SharedData.Fixture("bert"), "model.safetensors")),
        ["vocab.txt"] = File.ReadAllBytes(Path.Combine(SharedData.BertTokenizer, "vocab.txt")),
        ["tokenizer.json"] = File.ReadAllBytes(Path.Combine(SharedData.BertTokenizer, "tokenizer.json")),
        ["tokenizer_config.json"] = File.ReadAllBytes(Path.Combine(SharedData.BertTokenizer, "tokenizer_config.json")),
        ["special_tokens_map.json"] = File.ReadAllBytes(Path.Combine(SharedData.BertTokenizer, "special_tokens_map.json")),
    });

    readonly TempDir _cache = new();

    public HubTestBed(string pathPrefix = "") => Server = new FakeHub(pathPrefix);

    public FakeHub Server { get; }

    /// <summary>The Hub cache folder the options point at.</summary>
    public string CacheDirectory => _cache.Path;

    /// <summary>The repository's folder in the cache.</summary>
    public string RepoCache(string repoId = RepoId) => Path.Combine(CacheDirectory, "models--" + repoId.Replace("/", "--"));

    public ProgressLog Progress { get; } = new();

    /// <summary>config.json, model.safetensors and the four bert-base-uncased tokenizer files.</summary>
    public static IReadOnlyDictionary<string, byte[]> BertFiles => Bert.Value;

    /// <summary>The BERT files plus <paramref name="extra"/>, without <paramref name="without"/>.</summary>
    public static Dictionary<string, byte[]> BertFilesWith(IReadOnlyDictionary<string, byte[]>? extra = null, params string[] without)
    {
        var files = BertFiles.Where(f => !without.Contains(f.Key)).ToDictionary(f => f.Key, f => f.Value);
        foreach (var (k, v) in extra ?? new Dictionary<string, byte[]>()) files[k] = v;
        return files;
    }

    public FakeRepo AddBert(string repoId = RepoId, string? requiredToken = null) => Server.AddRepo(repoId, BertFiles, requiredToken);

    /// <summary>Options aimed at the fake Hub and the temporary cache, isolated from HF_* environment variables.</summary>
    public HubOptions Options(int maxRetries = 2) => new()
    {
        Endpoint = Server.Endpoint,
        CacheDirectory = CacheDirectory,
        Offline = false,
        RequestTimeout = TimeSpan.FromSeconds(5),
        ReadTimeout = TimeSpan.FromSeconds(5),
        MaxRetries = maxRetries,
        RetryDelay = TimeSpan.FromMilliseconds(10),
        LockTimeout = TimeSpan.FromSeconds(10),
        Progress = Progress,
        GetEnvironmentVariable = _ => null,
        GetHomeDirectory = () => Path.Combine(CacheDirectory, "home-not-used"),
    };

    /// <summary>Asserts that each file in the folder equals the one served.</summary>
    public static void ShouldHoldExactly(string folder, IReadOnlyDictionary<string, byte[]> files)
    {
        foreach (var (name, bytes) in files)
            File.ReadAllBytes(Path.Combine(folder, name)).Should().Equal(bytes, $"{name} must be byte-identical to the served file");
    }

    /// <summary>Files in blobs/ that are complete (no .incomplete suffix).</summary>
    public string[] CompleteBlobs(string repoId = RepoId)
    {
        var blobs = Path.Combine(RepoCache(repoId), "blobs");
        return Directory.Exists(blobs) ? Directory.GetFiles(blobs).Where(f => !f.EndsWith(".incomplete")).Select(f => Path.GetFileName(f)).ToArray() : Array.Empty<string>();
    }

    public string[] IncompleteBlobs(string repoId = RepoId)
    {
        var blobs = Path.Combine(RepoCache(repoId), "blobs");
        return Directory.Exists(blobs) ? Directory.GetFiles(blobs, "*.incomplete") : Array.Empty<string>();
    }

    /// <summary>
    /// Splits a safetensors file into two shards (the tensors in name order, halved) with a
    /// <c>model.safetensors.index.json</c> naming them, as <c>save_pretrained</c> with a size limit does.
    /// </summary>
    public static Dictionary<string, byte[]> Shard(byte[] safetensors)
    {
        var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(safetensors);
        var header = JsonNode.Parse(Encoding.UTF8.GetString(safetensors, 8, headerLength))!.AsObject();
        var data = safetensors.AsSpan(8 + headerLength);
        var names = header.Select(p => p.Key).Where(k => k != "__metadata__").OrderBy(k => k, StringComparer.Ordinal).ToList();
        var halves = new[] { names.Take(names.Count / 2).ToList(), names.Skip(names.Count / 2).ToList() };
        var result = new Dictionary<string, byte[]>();
        var weightMap = new JsonObject();
        for (var i = 0; i < 2; i++)
        {
            var shardName = $"model-0000{i + 1}-of-00002.safetensors";
            var shardHeader = new JsonObject();
            var shardData = new MemoryStream();
            foreach (var name in halves[i])
            {
                var entry = header[name]!.AsObject();
                var offsets = entry["data_offsets"]!.AsArray();
                var (begin, end) = ((int)offsets[0]!.GetValue<long>(), (int)offsets[1]!.GetValue<long>());
                shardHeader[name] = new JsonObject
                {
                    ["dtype"] = entry["dtype"]!.GetValue<string>(),
                    ["shape"] = JsonNode.Parse(entry["shape"]!.ToJsonString()),
                    ["data_offsets"] = new JsonArray(shardData.Length, shardData.Length + (end - begin)),
                };
                shardData.Write(data[begin..end]);
                weightMap[name] = shardName;
            }
            var headerBytes = Encoding.UTF8.GetBytes(shardHeader.ToJsonString());
            var padded = headerBytes.Concat(Enumerable.Repeat((byte)' ', (8 - headerBytes.Length % 8) % 8)).ToArray();
            var file = new MemoryStream();
            var prefix = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)padded.Length);
            file.Write(prefix);
            file.Write(padded);
            shardData.Position = 0;
            shardData.CopyTo(file);
            result[shardName] = file.ToArray();
        }
        var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = data.Length }, ["weight_map"] = weightMap };
        result["model.safetensors.index.json"] = Encoding.UTF8.GetBytes(index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return result;
    }

    public void Dispose()
    {
        Server.Dispose();
        _cache.Dispose();
    }
}

/// <summary>Collects progress reports synchronously (unlike <see cref="Progress{T}"/>, which posts them later).</summary>
internal sealed class ProgressLog : IProgress<HubDownloadProgress>
{
    readonly List<HubDownloadProgress> _reports = new();

    public Action<HubDownloadProgress>? OnReport { get; set; }

    public IReadOnlyList<HubDownloadProgress> Reports { get { lock (_reports) return _reports.ToList(); } }

    public void Report(HubDownloadProgress value)
    {
        lock (_reports) _reports.Add(value);
        OnReport?.Invoke(value);
    }
}
