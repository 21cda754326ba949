using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Onnx;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.LoRA.Tests.Export;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Onnx;

/// <summary>
/// Scoring an export needs no libtorch: Microsoft.ML.LoRA.Onnx and Microsoft.ML.LoRA.Tokenization reference neither
/// TorchSharp nor the library, a program that references only the scorer gets no torch file in its output, and that
/// program, run as its own process, scores through the C# API and through an ML.NET pipeline with the saved model's
/// predictions while its /proc/self/maps names no torch library (and does name ONNX Runtime's).
/// </summary>
public class NoLibTorchTests(SpamClassifierExport export) : IClassFixture<SpamClassifierExport>
{
    static string ProbeFolder()
    {
        var testOutput = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string framework = testOutput.Name, configuration = testOutput.Parent!.Name;
        return Path.Combine(SharedData.RepoRoot, "test", "Microsoft.ML.LoRA.Onnx.Probe", "bin", configuration, framework);
    }

    [Fact]
    public void The_scoring_assemblies_reference_neither_torchsharp_nor_the_library()
    {
        foreach (var assembly in new[] { typeof(OnnxTextClassifier).Assembly, typeof(Microsoft.ML.LoRA.Tokenization.ITextEncoder).Assembly })
        {
            var references = assembly.GetReferencedAssemblies().Select(r => r.Name).ToList();
            references.Should().NotContain(n => n!.Contains("Torch", StringComparison.OrdinalIgnoreCase), assembly.GetName().Name);
            references.Should().NotContain("Microsoft.ML.LoRA", assembly.GetName().Name);
        }
        typeof(OnnxTextClassifier).Assembly.GetReferencedAssemblies().Select(r => r.Name).Should().Contain("Microsoft.ML.OnnxRuntime");
    }

    [Fact]
    public void A_program_that_references_the_scorer_gets_no_torch_file()
    {
        var folder = ProbeFolder();
        File.Exists(Path.Combine(folder, "Microsoft.ML.LoRA.Onnx.Probe.dll")).Should().BeTrue($"the probe is built with the tests ({folder})");

        var files = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Select(Path.GetFileName).ToList();

        files.Should().NotContain(f => f!.Contains("torch", StringComparison.OrdinalIgnoreCase));
        files.Should().Contain("Microsoft.ML.LoRA.Tokenization.dll").And.NotContain("Microsoft.ML.LoRA.dll");
    }

    [Fact]
    public async Task A_process_scores_through_the_api_and_ml_net_without_mapping_libtorch()
    {
        using var dir = new TempDir();
        var rows = SpamClassifierExport.TestRows.Take(100).ToArray();
        var textsFile = dir.File("texts.txt");
        File.WriteAllLines(textsFile, rows.Select(r => r.Text.ReplaceLineEndings(" ")));
        var texts = File.ReadAllLines(textsFile);

        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { Path.Combine(ProbeFolder(), "Microsoft.ML.LoRA.Onnx.Probe.dll"), export.Fp32Folder, textsFile }) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        process.ExitCode.Should().Be(0, await stderr);
        using var report = JsonDocument.Parse(await stdout);
        var root = report.RootElement;

        root.GetProperty("mapsRead").GetBoolean().Should().BeTrue("the check reads /proc/self/maps");
        root.GetProperty("onnxRuntimeMapped").GetBoolean().Should().BeTrue("the check sees the native libraries a process maps");
        root.GetProperty("torchMaps").GetArrayLength().Should().Be(0, root.GetProperty("torchMaps").ToString());
        root.GetProperty("torchAssemblies").GetArrayLength().Should().Be(0);

        float[][] Probabilities(string name) => root.GetProperty(name).EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray();
        var api = Probabilities("apiProbabilities");
        var mlnet = Probabilities("mlnetProbabilities");
        var expected = SavedModelProbabilities(texts);
        Diagnostics.LogitsCases.MaxAbsDifference(api, expected).Should().BeLessThan(1e-4, "the C# API scores as the saved model does");
        Diagnostics.LogitsCases.MaxAbsDifference(mlnet, expected).Should().BeLessThan(1e-4, "so does the ML.NET pipeline (one row at a time, at its own length)");
        root.GetProperty("mlnetLabels").EnumerateArray().Select(e => e.GetString()).Should()
            .Equal(root.GetProperty("apiLabels").EnumerateArray().Select(e => e.GetString()));
    }

    float[][] SavedModelProbabilities(string[] texts)
    {
        var model = new MLContext(seed: 1).Model.LoadWithLora(export.ModelZip, out _);
        try { return PipelineStages.LoraStage(model).Logits(texts, null).Select(OnnxTextClassifier.Softmax).ToArray(); }
        finally { PipelineStages.LoraStage(model).Dispose(); }
    }
}
