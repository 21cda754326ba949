using System.Text.Json;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models.Quantization;

namespace Microsoft.ML.LoRA.Tests.Lora;

/// <summary>LoraOptions in JSON (options.json, the model file's manifest): choices are written by name, and read by name or by number.</summary>
public class LoraOptionsJsonTests
{
    static readonly JsonSerializerOptions Camel = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    [Fact]
    public void Choices_are_written_by_name()
    {
        var options = new LoraOptions { Init = LoraInit.Pissa, Scaling = LoraScaling.RsLora, Bias = LoraBias.LoraOnly, BaseQuantization = BaseQuantization.Nf4 };

        using var json = JsonDocument.Parse(JsonSerializer.Serialize(options, Camel));

        json.RootElement.GetProperty("init").GetString().Should().Be("Pissa");
        json.RootElement.GetProperty("scaling").GetString().Should().Be("RsLora");
        json.RootElement.GetProperty("bias").GetString().Should().Be("LoraOnly");
        json.RootElement.GetProperty("baseQuantization").GetString().Should().Be("Nf4");
    }

    [Fact]
    public void Names_and_the_numbers_older_files_hold_both_read_back()
    {
        var byName = JsonSerializer.Deserialize<LoraOptions>("""{"init": "Olora", "baseQuantization": "Fp4", "bias": "All"}""", Camel)!;
        var byNumber = JsonSerializer.Deserialize<LoraOptions>(
            $$"""{"init": {{(int)LoraInit.Olora}}, "baseQuantization": {{(int)BaseQuantization.Fp4}}, "bias": {{(int)LoraBias.All}}}""", Camel)!;

        foreach (var read in new[] { byName, byNumber })
        {
            read.Init.Should().Be(LoraInit.Olora);
            read.BaseQuantization.Should().Be(BaseQuantization.Fp4);
            read.Bias.Should().Be(LoraBias.All);
        }
    }
}
