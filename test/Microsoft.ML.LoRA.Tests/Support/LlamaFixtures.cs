using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;

namespace Microsoft.ML.LoRA.Tests.Support;

/// <summary>
/// The LLaMA family's parity fixtures, committed under test/Microsoft.ML.LoRA.Tests/Fixtures/llama (made by
/// make_fixtures.py there, see its README), and small configs of the family for tests that build models.
/// </summary>
public static class LlamaFixtures
{
    /// <summary>The three fixtures: a Llama 3.1-style llama, a Qwen2 and a Mistral with a sliding window.</summary>
    public static readonly string[] Variants = { "llama", "qwen2", "mistral" };

    /// <summary>The folder of a fixture (config.json, model.safetensors, adapter/, cases.json).</summary>
    public static string Folder(string variant) =>
        Path.Combine(SharedData.RepoRoot, "test", "Microsoft.ML.LoRA.Tests", "Fixtures", "llama", variant);

    /// <summary>
    /// A small config of <paramref name="modelType"/> (hidden 32, 2 layers, 4 heads sharing 2 key/value heads, a
    /// 100-token vocabulary), with <paramref name="fields"/> added or replaced.
    /// </summary>
    public static JsonObject TinyConfig(string modelType, params (string Key, JsonNode? Value)[] fields)
    {
        var config = new JsonObject
        {
            ["model_type"] = modelType, ["hidden_size"] = 32, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4,
            ["num_key_value_heads"] = 2, ["intermediate_size"] = 64, ["vocab_size"] = 100, ["max_position_embeddings"] = 128,
            ["rms_norm_eps"] = 1e-5, ["hidden_act"] = "silu", ["pad_token_id"] = 0,
        };
        foreach (var (key, value) in fields) config[key] = value;
        return config;
    }

    /// <summary>A config object parsed as <see cref="TransformerConfig.Load"/> would read it.</summary>
    public static TransformerConfig Parse(JsonObject config) => TransformerConfig.Parse(config, "test config.json");
}
