using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Checkpoints;

/// <summary>Opening a model folder says exactly what is missing or wrong, and finds the weights in any supported layout.</summary>
public sealed class CheckpointFolderTests : IDisposable
{
    readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    string WriteConfig(string json)
    {
        var folder = Path.Combine(_dir.Path, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), json);
        return folder;
    }

    static string Refusal(string folder)
    {
        var e = FluentActions.Invoking(() => CheckpointFolder.Open(folder)).Should().Throw<CheckpointFormatException>().Which;
        e.FilePath.Should().Be(Path.Combine(folder, "config.json"));
        return e.Message;
    }

    const string BertConfig =
        "{\"model_type\": \"bert\", \"hidden_size\": 32, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, " +
        "\"intermediate_size\": 64, \"max_position_embeddings\": 64, \"vocab_size\": 100}";

    [Fact]
    public void A_folder_that_does_not_exist_is_reported()
    {
        var missing = Path.Combine(_dir.Path, "no-such-model");

        FluentActions.Invoking(() => CheckpointFolder.Open(missing)).Should().Throw<DirectoryNotFoundException>()
            .WithMessage($"Model folder not found: {missing}");
    }

    [Fact]
    public void A_folder_without_config_json_is_reported()
    {
        FluentActions.Invoking(() => CheckpointFolder.Open(_dir.Path)).Should().Throw<FileNotFoundException>()
            .WithMessage($"Model folder {_dir.Path} has no config.json*");
    }

    [Theory]
    [InlineData("bert", "relative_key")]
    [InlineData("roberta", "relative_key_query")]
    public void Relative_position_embeddings_are_refused_naming_the_field_and_its_value(string modelType, string type)
    {
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(SharedData.Fixture(modelType), "config.json")))!.AsObject();
        TransformerConfig.Parse(config).ModelType.Should().Be(modelType);
        config["position_embedding_type"] = "absolute";
        TransformerConfig.Parse(config).ModelType.Should().Be(modelType, "absolute positions are what the models build");

        config["position_embedding_type"] = type;
        FluentActions.Invoking(() => TransformerConfig.Parse(config)).Should().Throw<CheckpointFormatException>()
            .WithMessage($"*position_embedding_type '{type}' is not supported*");
    }

    [Fact]
    public void An_unknown_model_type_is_refused_listing_the_supported_types()
    {
        var e = FluentActions.Invoking(() => TransformerConfig.Parse(new System.Text.Json.Nodes.JsonObject { ["model_type"] = "xlnet" }))
            .Should().Throw<CheckpointFormatException>().Which;

        e.Message.Should().Contain("model_type 'xlnet' is not supported (supported: bert, distilbert, roberta, gpt2, deberta-v2, llama, mistral, qwen2)");
    }

    [Fact]
    public void A_config_without_model_type_is_refused()
    {
        Refusal(WriteConfig("{\"hidden_size\": 32}")).Should().Contain("has no model_type");
    }

    [Theory]
    [InlineData("hidden_size")]
    [InlineData("num_attention_heads")]
    [InlineData("vocab_size")]
    public void A_config_missing_a_required_field_is_refused_naming_it(string field)
    {
        var json = System.Text.Json.Nodes.JsonNode.Parse(BertConfig)!.AsObject();
        json.Remove(field);

        Refusal(WriteConfig(json.ToJsonString())).Should().Contain($"is missing the integer field '{field}'");
    }

    [Fact]
    public void A_field_of_the_wrong_type_is_refused_naming_it()
    {
        Refusal(WriteConfig(BertConfig.Replace("\"hidden_size\": 32", "\"hidden_size\": \"32\"")))
            .Should().Contain("field 'hidden_size' is not an integer (\"32\")");
    }

    [Fact]
    public void A_hidden_size_not_divisible_by_the_heads_is_refused()
    {
        Refusal(WriteConfig(BertConfig.Replace("\"hidden_size\": 32", "\"hidden_size\": 30")))
            .Should().Contain("hidden size 30 is not a multiple of the 4 attention heads");
    }

    [Theory]
    [InlineData("{\"model_type\": ", "not valid JSON")]
    [InlineData("[\"bert\"]", "config is not a JSON object")]
    public void A_config_that_is_not_a_JSON_object_is_refused(string json, string expected)
    {
        Refusal(WriteConfig(json)).Should().Contain(expected);
    }

    [Fact]
    public void A_folder_without_weights_is_reported_when_they_are_opened()
    {
        var folder = CheckpointFolder.Open(WriteConfig(BertConfig));

        folder.WeightsEntry.Should().BeNull();
        FluentActions.Invoking(() => folder.OpenWeights()).Should().Throw<FileNotFoundException>()
            .WithMessage("*has no weights (model.safetensors, model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json)");
    }

    [Fact]
    public void A_folder_holding_only_pytorch_model_bin_opens_its_weights_with_the_pickle_reader()
    {
        var folder = CheckpointFolder.Open(CheckpointAssets.TinyBertBinFolder);
        using var weights = folder.OpenWeights();

        weights.Should().BeOfType<PyTorchBinSource>();
        weights.Names.Should().Contain("classifier.weight");
        folder.ComputeWeightsSha256().Should().MatchRegex("^[0-9a-f]{64}$");
    }

    [Fact]
    public void A_folder_with_a_bin_index_opens_all_its_shards()
    {
        var folder = CheckpointFolder.Open(CheckpointAssets.TinyBertShardedBinFolder);
        using var weights = folder.OpenWeights();

        Path.GetFileName(folder.WeightsEntry).Should().Be("pytorch_model.bin.index.json");
        weights.Files.Select(Path.GetFileName).Should().Equal("pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin");
        weights.Names.Should().HaveCount(42);
    }

    [Fact]
    public void Safetensors_are_preferred_when_a_folder_holds_both_formats()
    {
        var folder = Path.Combine(_dir.Path, "both");
        Directory.CreateDirectory(folder);
        foreach (var file in Directory.GetFiles(CheckpointAssets.TinyBertBinFolder)) File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        File.Copy(CheckpointAssets.TinyBertSafetensors, Path.Combine(folder, "model.safetensors"));

        using var weights = CheckpointFolder.Open(folder).OpenWeights();

        weights.Should().BeOfType<SafeTensorsSource>();
    }
}
