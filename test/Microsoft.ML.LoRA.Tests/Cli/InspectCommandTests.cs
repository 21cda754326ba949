using System.Text.Json;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary>
/// <c>lora inspect</c> builds a model from a real Hugging Face config (../shared/configs) and counts its parameters.
/// The expected figures are those PEFT's print_trainable_parameters reports for the same models; each LoRA figure is
/// also derived from the config (layers × adapted layers per block × r × (in + out)).
/// </summary>
[Collection(TorchDefaultDeviceCollection.Name)]
public class InspectCommandTests
{
    static readonly string DistilBert = SharedData.Config("distilbert-base-uncased.json");
    static readonly string BertBase = SharedData.Config("bert-base-uncased.json");

    static JsonElement InspectJson(params string[] args)
    {
        var result = CliRun.Lora(new[] { "inspect" }.Concat(args).Append("--json").ToArray());
        result.ExitCode.Should().Be(ExitCodes.Success, result.Stderr);
        result.Stderr.Should().BeEmpty();
        using var doc = JsonDocument.Parse(result.Stdout);
        return doc.RootElement.Clone();
    }

    static long Long(JsonElement json, string key) => json.GetProperty(key).GetInt64();

    [Fact]
    public void Inspect_distilbert_counts_the_full_model()
    {
        var json = InspectJson("--config", DistilBert, "--labels", "2");

        Long(json, "totalParameters").Should().Be(66_955_010);
        Long(json, "loraParameters").Should().Be(0);
        Long(json, "baseParameters").Should().Be(66_955_010);
    }

    [Fact]
    public void Inspect_distilbert_without_targets_trains_only_the_head()
    {
        var config = TransformerConfig.Load(DistilBert);
        int hidden = config.HiddenSize;
        long preClassifier = hidden * hidden + hidden, classifier = hidden * 2 + 2;

        var json = InspectJson("--config", DistilBert, "--labels", "2");

        Long(json, "trainableParameters").Should().Be(592_130).And.Be(preClassifier + classifier);
        json.GetProperty("savedModules").EnumerateArray().Select(e => e.GetString()).Should().Equal("pre_classifier", "classifier");
        json.GetProperty("adaptedModules").GetArrayLength().Should().Be(0);
    }

    [Fact]
    public void Inspect_targets_none_is_the_same_as_no_targets()
    {
        var none = InspectJson("--config", DistilBert, "--labels", "2", "--targets", "none");

        Long(none, "loraParameters").Should().Be(0);
        Long(none, "trainableParameters").Should().Be(592_130);
    }

    [Fact]
    public void Inspect_distilbert_q_lin_v_lin_rank_8_adds_147456_lora_parameters()
    {
        var config = TransformerConfig.Load(DistilBert);
        long perLayer = 2 * 8 * (config.HiddenSize + config.HiddenSize);

        var json = InspectJson("--config", DistilBert, "--labels", "2", "--targets", "q_lin,v_lin", "--rank", "8");

        Long(json, "loraParameters").Should().Be(147_456).And.Be(config.NumLayers * perLayer);
        Long(json, "totalParameters").Should().Be(66_955_010 + 147_456);
        Long(json, "trainableParameters").Should().Be(147_456 + 592_130, "the adapters and the head train");
        json.GetProperty("targetModules").EnumerateArray().Select(e => e.GetString()).Should().Equal("q_lin", "v_lin");
        json.GetProperty("rank").GetInt32().Should().Be(8);
    }

    [Fact]
    public void Inspect_distilbert_query_value_and_mlp_switches_add_516096_lora_parameters()
    {
        var config = TransformerConfig.Load(DistilBert);
        int h = config.HiddenSize, ffn = config.IntermediateSize, r = 8;
        long perLayer = r * (h + h) * 2 + r * (h + ffn) * 2;

        var json = InspectJson("--config", DistilBert, "--labels", "2", "--lora-query", "--lora-value", "--lora-mlp", "--rank", "8");

        Long(json, "loraParameters").Should().Be(516_096).And.Be(config.NumLayers * perLayer);
        json.GetProperty("adaptedModules").GetArrayLength().Should().Be(config.NumLayers * 4);
    }

    [Fact]
    public void Inspect_bert_base_query_value_rank_8_adds_294912_lora_parameters()
    {
        var config = TransformerConfig.Load(BertBase);

        var json = InspectJson("--config", BertBase, "--labels", "2", "--targets", "query,value", "--rank", "8");

        Long(json, "loraParameters").Should().Be(294_912).And.Be(config.NumLayers * 2 * 8 * (2 * config.HiddenSize));
    }

    [Fact]
    public void Inspect_rank_scales_the_lora_parameters()
    {
        var rank8 = InspectJson("--config", DistilBert, "--targets", "q_lin", "--rank", "8");
        var rank16 = InspectJson("--config", DistilBert, "--targets", "q_lin", "--rank", "16");

        Long(rank16, "loraParameters").Should().Be(2 * Long(rank8, "loraParameters"));
    }

    [Fact]
    public void Inspect_labels_sizes_the_classifier()
    {
        var two = InspectJson("--config", DistilBert, "--labels", "2");
        var five = InspectJson("--config", DistilBert, "--labels", "5");

        int hidden = TransformerConfig.Load(DistilBert).HiddenSize;
        (Long(five, "totalParameters") - Long(two, "totalParameters")).Should().Be(3 * (hidden + 1));
        five.GetProperty("numLabels").GetInt32().Should().Be(5);
    }

    [Fact]
    public void Inspect_prints_a_table_with_thousands_separators()
    {
        var result = CliRun.Lora("inspect", "--config", DistilBert, "--labels", "2", "--targets", "q_lin,v_lin");

        result.ExitCode.Should().Be(0, result.Stderr);
        result.Stdout.Should().Contain("66,955,010").And.Contain("147,456").And.Contain("739,586");
        result.Stdout.Should().Contain("Trainable").And.Contain("LoRA: rank 8, alpha 16, 12 layers adapted (q_lin, v_lin)");
        result.Stdout.Should().NotContain("\u001b[", "redirected output has no ANSI escapes");
    }

    [Fact]
    public void Inspect_json_prints_exactly_one_object()
    {
        var result = CliRun.Lora("inspect", "--config", DistilBert, "--json");

        result.ExitCode.Should().Be(0, result.Stderr);
        using var doc = JsonDocument.Parse(result.Stdout); // throws if anything but one JSON document is there
        doc.RootElement.ValueKind.Should().Be(JsonValueKind.Object);
        doc.RootElement.EnumerateObject().Select(p => p.Name).Should()
            .Contain(new[] { "totalParameters", "trainableParameters", "loraParameters" });
    }

    [Fact]
    public void Inspect_leaves_torchsharp_on_the_cpu()
    {
        CliRun.Lora("inspect", "--config", DistilBert, "--json").ExitCode.Should().Be(0);

        global::TorchSharp.torch.get_default_device().type.Should().Be(global::TorchSharp.DeviceType.CPU);
    }

    [Fact]
    public void Inspect_missing_config_fails_with_not_found()
    {
        var missing = Path.Combine(Path.GetTempPath(), "no-such-config-" + Guid.NewGuid().ToString("N") + ".json");

        CliRun.Lora("inspect", "--config", missing).ShouldFailCleanly(ExitCodes.NotFound, missing);
    }

    [Fact]
    public void Inspect_unsupported_model_type_fails_as_invalid_input()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("config.json"), """{"model_type": "xlnet", "d_model": 32}""");

        CliRun.Lora("inspect", "--config", dir.File("config.json"))
            .ShouldFailCleanly(ExitCodes.InvalidInput, "xlnet", "not supported");
    }

    static readonly string DebertaV3Large = SharedData.Config("deberta-v3-large.json");

    [Fact]
    public void Inspect_deberta_v3_large_query_proj_value_proj_rank_8_trains_788482_parameters()
    {
        var config = TransformerConfig.Load(DebertaV3Large);
        int h = config.HiddenSize;
        long lora = config.NumLayers * 2 * 8 * (h + h), classifier = h * 2 + 2;

        var json = InspectJson("--config", DebertaV3Large, "--labels", "2", "--targets", "query_proj,value_proj", "--rank", "8");

        Long(json, "baseParameters").Should().Be(435_063_810);
        Long(json, "loraParameters").Should().Be(786_432).And.Be(lora);
        Long(json, "trainableParameters").Should().Be(788_482).And.Be(lora + classifier,
            "PEFT's figure: the adapters and the classifier (modules_to_save), not the pooler");
        json.GetProperty("savedModules").EnumerateArray().Select(e => e.GetString()).Should().Equal("classifier");
        json.GetProperty("targetModules").EnumerateArray().Select(e => e.GetString()).Should().Equal("query_proj", "value_proj");
        json.GetProperty("family").GetString().Should().Be("deberta-v2");
    }

    [Fact]
    public void Inspect_deberta_v3_large_counts_hugging_faces_parameters()
    {
        var config = TransformerConfig.Load(DebertaV3Large);
        long h = config.HiddenSize, ffn = config.IntermediateSize;
        long embeddings = config.VocabSize * h + 2 * h;                                    // word_embeddings, LayerNorm (no positions, no token types)
        long layer = 4 * (h * h + h) + 2 * h + (h * ffn + ffn) + (ffn * h + h) + 2 * h;   // q/k/v/output dense, 2 LayerNorms, intermediate, output
        long encoder = config.NumLayers * layer + 2 * 256 * h + 2 * h;                     // rel_embeddings (2 x position_buckets), LayerNorm
        long pooler = h * h + h, classifier = h * 2 + 2;

        var json = InspectJson("--config", DebertaV3Large, "--labels", "2");

        Long(json, "totalParameters").Should().Be(435_063_810).And.Be(embeddings + encoder + pooler + classifier);
        Long(json, "trainableParameters").Should().Be(classifier);
    }

    [Fact]
    public void Inspect_unknown_target_fails_naming_it()
    {
        CliRun.Lora("inspect", "--config", DistilBert, "--targets", "q_lin,no_such_layer")
            .ShouldFailCleanly(ExitCodes.Usage, "'no_such_layer'", "match no linear layer");
    }

    [Theory]
    [InlineData("--rank", "abc", "--rank must be a whole number of at least 1 (got 'abc')")]
    [InlineData("--rank", "0", "--rank must be a whole number of at least 1 (got '0')")]
    [InlineData("--alpha", "-2", "--alpha must be a positive number (got '-2')")]
    [InlineData("--dropout", "1.5", "--dropout must be a number in [0, 1) (got '1.5')")]
    [InlineData("--labels", "0", "--labels must be a whole number of at least 1 (got '0')")]
    public void Inspect_invalid_numbers_fail_as_usage_errors(string option, string value, string message)
    {
        CliRun.Lora("inspect", "--config", DistilBert, option, value).ShouldFailCleanly(ExitCodes.Usage, message, "lora inspect --help");
    }

    [Fact]
    public void Inspect_targets_none_with_a_switch_is_contradictory()
    {
        CliRun.Lora("inspect", "--config", DistilBert, "--targets", "none", "--lora-query")
            .ShouldFailCleanly(ExitCodes.Usage, "--targets none");
    }

    [Fact]
    public void Inspect_without_config_fails_as_usage_error()
    {
        CliRun.Lora("inspect").ShouldFailCleanly(ExitCodes.Usage, "--config", "required");
    }

    [Fact]
    public void Inspect_unknown_option_fails_as_usage_error()
    {
        CliRun.Lora("inspect", "--config", DistilBert, "--rnak", "8").ShouldFailCleanly(ExitCodes.Usage, "--rnak");
    }
}
