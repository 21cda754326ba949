using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tests.Support;
using TorchSharp;

namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary>
/// <c>lora inspect</c> counts the parameters of 7B-sized LLaMA-family models from their configs, building the model's
/// module tree on the meta device (nothing allocated). Each expected figure is derived in the test from the
/// architecture; for Llama 2 7B it is also Hugging Face's: LlamaForCausalLM has 6,738,415,616 parameters, of which
/// lm_head is 32000 x 4096, and the classifier adds a 2 x 4096 score layer.
/// </summary>
[Collection(TorchDefaultDeviceCollection.Name)]
public class LlamaInspectTests : IDisposable
{
    readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    static JsonElement InspectJson(params string[] args)
    {
        var result = CliRun.Lora(new[] { "inspect" }.Concat(args).Append("--json").ToArray());
        result.ExitCode.Should().Be(ExitCodes.Success, result.Stderr);
        using var doc = JsonDocument.Parse(result.Stdout);
        return doc.RootElement.Clone();
    }

    static long Long(JsonElement json, string key) => json.GetProperty(key).GetInt64();

    /// <summary>
    /// The classifier's parameters from the architecture: embed_tokens; per layer q/k/v/o projections (with q/k/v
    /// biases where <paramref name="qkvBias"/>), gate/up/down projections and two RMSNorm weights; the final norm;
    /// a bias-free score layer. No lm_head.
    /// </summary>
    static long ClassifierParameters(long vocab, long hidden, long layers, long heads, long kvHeads, long intermediate, long labels, bool qkvBias = false)
    {
        long headDim = hidden / heads;
        long attention = hidden * heads * headDim + 2 * hidden * kvHeads * headDim + heads * headDim * hidden
            + (qkvBias ? heads * headDim + 2 * kvHeads * headDim : 0);
        long mlp = 3 * hidden * intermediate;
        long norms = 2 * hidden;
        return vocab * hidden + layers * (attention + mlp + norms) + hidden + labels * hidden;
    }

    /// <summary>LoRA on q_proj and v_proj: per layer r·(hidden + heads·headDim) + r·(hidden + kvHeads·headDim).</summary>
    static long QueryValueLora(long hidden, long layers, long heads, long kvHeads, long rank)
    {
        long headDim = hidden / heads;
        return layers * rank * ((hidden + heads * headDim) + (hidden + kvHeads * headDim));
    }

    [Fact]
    public void Inspect_llama_2_7b_with_q_proj_v_proj_rank_8()
    {
        var json = InspectJson("--config", SharedData.Config("llama-2-7b.json"), "--labels", "2", "--targets", "q_proj,v_proj", "--rank", "8");

        long expectedBase = ClassifierParameters(vocab: 32000, hidden: 4096, layers: 32, heads: 32, kvHeads: 32, intermediate: 11008, labels: 2);
        expectedBase.Should().Be(6_738_415_616 - 32000L * 4096 + 2 * 4096, "Hugging Face's LlamaForCausalLM count without lm_head, with a score layer");
        Long(json, "baseParameters").Should().Be(6_607_351_808).And.Be(expectedBase);
        Long(json, "loraParameters").Should().Be(4_194_304).And.Be(QueryValueLora(4096, 32, 32, 32, 8));
        Long(json, "trainableParameters").Should().Be(4_194_304 + 2 * 4096, "the adapters and the score layer train");
        json.GetProperty("family").GetString().Should().Be("llama");
        json.GetProperty("adaptedModules").GetArrayLength().Should().Be(64);
        json.GetProperty("savedModules").EnumerateArray().Select(e => e.GetString()).Should().Equal("score");
    }

    [Fact]
    public void Inspect_a_mistral_7b_config_counts_grouped_key_value_heads()
    {
        // Mistral-7B-v0.1's architecture: 8 key/value heads for 32 query heads, a 14336-wide MLP, a 4096 sliding window.
        var path = Write("mistral-7b.json", new JsonObject
        {
            ["model_type"] = "mistral", ["hidden_size"] = 4096, ["intermediate_size"] = 14336, ["num_hidden_layers"] = 32,
            ["num_attention_heads"] = 32, ["num_key_value_heads"] = 8, ["vocab_size"] = 32000, ["max_position_embeddings"] = 32768,
            ["rms_norm_eps"] = 1e-5, ["rope_theta"] = 10000.0, ["sliding_window"] = 4096, ["hidden_act"] = "silu",
            ["tie_word_embeddings"] = false, ["bos_token_id"] = 1, ["eos_token_id"] = 2,
        });

        var json = InspectJson("--config", path, "--labels", "2", "--targets", "q_proj,v_proj", "--rank", "8");

        long expectedBase = ClassifierParameters(vocab: 32000, hidden: 4096, layers: 32, heads: 32, kvHeads: 8, intermediate: 14336, labels: 2);
        expectedBase.Should().Be(7_241_732_096 - 32000L * 4096 + 2 * 4096, "the causal LM with lm_head counts 7,241,732,096");
        Long(json, "baseParameters").Should().Be(expectedBase);
        Long(json, "loraParameters").Should().Be(3_407_872).And.Be(QueryValueLora(4096, 32, 32, 8, 8));
    }

    [Fact]
    public void Inspect_a_qwen2_config_counts_the_query_key_value_biases()
    {
        // Qwen2-0.5B's architecture: 14 heads of 64 sharing 2 key/value heads, q/k/v biases, tied embeddings.
        var path = Write("qwen2-0.5b.json", new JsonObject
        {
            ["model_type"] = "qwen2", ["hidden_size"] = 896, ["intermediate_size"] = 4864, ["num_hidden_layers"] = 24,
            ["num_attention_heads"] = 14, ["num_key_value_heads"] = 2, ["vocab_size"] = 151936, ["max_position_embeddings"] = 32768,
            ["rms_norm_eps"] = 1e-6, ["rope_theta"] = 1000000.0, ["use_sliding_window"] = false, ["sliding_window"] = 32768,
            ["max_window_layers"] = 24, ["hidden_act"] = "silu", ["tie_word_embeddings"] = true, ["bos_token_id"] = 151643,
            ["eos_token_id"] = 151643,
        });

        var json = InspectJson("--config", path, "--labels", "3", "--targets", "q_proj,v_proj", "--rank", "8");

        long expectedBase = ClassifierParameters(vocab: 151936, hidden: 896, layers: 24, heads: 14, kvHeads: 2, intermediate: 4864, labels: 3, qkvBias: true);
        expectedBase.Should().Be(494_032_768 + 3 * 896, "the tied causal LM counts 494,032,768");
        Long(json, "baseParameters").Should().Be(expectedBase);
        Long(json, "loraParameters").Should().Be(540_672).And.Be(QueryValueLora(896, 24, 14, 2, 8));
    }

    [Fact]
    public void Inspect_all_linear_adapts_every_projection_but_not_the_score_layer()
    {
        var json = InspectJson("--config", SharedData.Config("llama-2-7b.json"), "--targets", "all-linear", "--rank", "8");

        long perLayer = 8 * (4 * (4096 + 4096) + 3 * (4096 + 11008));
        Long(json, "loraParameters").Should().Be(32 * perLayer);
        json.GetProperty("adaptedModules").EnumerateArray().Select(e => e.GetString()).Should().HaveCount(7 * 32).And.NotContain("score");
    }

    public static IEnumerable<object[]> Configs => new[] { "llama-2-7b.json", "bert-base-uncased.json", "distilbert-base-uncased.json", "roberta-base.json", "gpt2.json" }
        .Select(c => new object[] { c });

    /// <summary>
    /// What inspect builds holds no storage in any family: every parameter is on the meta device, the embedding tables
    /// included (TorchSharp's native Embedding would otherwise build its table on the CPU).
    /// </summary>
    [Theory]
    [MemberData(nameof(Configs))]
    public void A_model_built_on_the_meta_device_allocates_no_parameter(string configName)
    {
        var config = TransformerConfig.Load(SharedData.Config(configName));
        var previous = torch.get_default_device();
        torch.set_default_device(torch.META);
        try
        {
            using var model = ModelFactory.Create(config, 2);
            var onOtherDevices = model.named_parameters().Where(p => p.parameter.device.type != DeviceType.META).Select(p => p.name).ToList();

            onOtherDevices.Should().BeEmpty();
            model.named_parameters().Sum(p => p.parameter.numel()).Should().BeGreaterThan(1_000_000);
        }
        finally
        {
            torch.set_default_device(previous);
        }
    }

    string Write(string name, JsonObject config)
    {
        var path = Path.Combine(_dir.Path, name);
        File.WriteAllText(path, config.ToJsonString());
        return path;
    }
}
