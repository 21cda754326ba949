using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary>The real <c>lora</c> executable, started as its own process, works end to end.</summary>
public class ExecutableTests
{
    [Fact]
    public async Task Lora_executable_prints_inspect_json_on_stdout()
    {
        var result = await ProcessRun.Lora("inspect", "--config", SharedData.Config("bert-tiny.json"), "--targets", "query,value", "--rank", "4", "--json");

        result.ExitCode.Should().Be(0, result.Stderr);
        using var json = JsonDocument.Parse(result.Stdout);
        var root = json.RootElement;
        root.GetProperty("family").GetString().Should().Be("bert");
        var config = TransformerConfig.Load(SharedData.Config("bert-tiny.json"));
        // query and value adapters of rank 4 in every layer: A is [4, hidden], B is [hidden, 4].
        root.GetProperty("loraParameters").GetInt64().Should().Be(config.NumLayers * 2 * 4 * (config.HiddenSize + config.HiddenSize));
        root.GetProperty("totalParameters").GetInt64().Should().BeGreaterThan(root.GetProperty("trainableParameters").GetInt64());
    }
}
