using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary>The real <c>lora</c> executable, started as its own process, works end to end.</summary>
public class ExecutableTests
{
    /// <summary>lora.dll in the CLI project's output folder, built with the same configuration as these tests.</summary>
    static string LoraDll()
    {
        var testOutput = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string framework = testOutput.Name, configuration = testOutput.Parent!.Name;
        var path = Path.Combine(SharedData.RepoRoot, "src", "Microsoft.ML.LoRA.Cli", "bin", configuration, framework, "lora.dll");
        File.Exists(path).Should().BeTrue($"the CLI is built with the tests ({path})");
        return path;
    }

    [Fact]
    public async Task Lora_executable_prints_inspect_json_on_stdout()
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { LoraDll(), "inspect", "--config", SharedData.Config("bert-tiny.json"), "--targets", "query,value", "--rank", "4", "--json" })
            start.ArgumentList.Add(arg);

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);

        process.ExitCode.Should().Be(0, await stderr);
        using var json = JsonDocument.Parse(await stdout);
        var root = json.RootElement;
        root.GetProperty("family").GetString().Should().Be("bert");
        var config = TransformerConfig.Load(SharedData.Config("bert-tiny.json"));
        // query and value adapters of rank 4 in every layer: A is [4, hidden], B is [hidden, 4].
        root.GetProperty("loraParameters").GetInt64().Should().Be(config.NumLayers * 2 * 4 * (config.HiddenSize + config.HiddenSize));
        root.GetProperty("totalParameters").GetInt64().Should().BeGreaterThan(root.GetProperty("trainableParameters").GetInt64());
    }
}
