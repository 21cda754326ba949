using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Checkpoints;

/// <summary>A checkpoint saved already quantized (bitsandbytes, GPTQ, ...) is refused with the way to get a quantized base.</summary>
public class QuantizedCheckpointRefusalTests
{
    [Fact]
    public void A_checkpoint_saved_by_bitsandbytes_is_refused_naming_the_method_and_the_option_that_quantizes_in_memory()
    {
        using var dir = new TempDir();
        var folder = TinyCheckpoint.Bert(dir.File("bert"), hidden: 32, seed: 1);
        var configPath = Path.Combine(folder, "config.json");
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(configPath))!;
        config["quantization_config"] = new JsonObject { ["quant_method"] = "bitsandbytes", ["load_in_4bit"] = true, ["bnb_4bit_quant_type"] = "nf4" };
        File.WriteAllText(configPath, config.ToJsonString());

        var load = () => PretrainedModel.Load(folder);

        load.Should().Throw<CheckpointFormatException>().WithMessage("*saved quantized (bitsandbytes)*--quantize nf4*");
    }
}
