using System.Text.Json;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary>
/// <c>lora train --quantize nf4 --double-quant --init loftq</c> end to end: the run records its variant, the saved model
/// scores again over the base it quantizes at load, and merge and export-adapter write what the model computed.
/// </summary>
public class QuantizedRunTests
{
    [Fact]
    public void A_QLoRA_LoftQ_run_saves_a_model_that_evaluates_merges_and_exports_a_LoftQ_adapter()
    {
        using var dir = new TempDir();
        var model = TinyCheckpoint.Bert(dir.File("bert"), hidden: 64, seed: 2);
        var data = TextData.WriteTsv(dir.File("train.tsv"), TextData.Balanced(TextData.SmsSpam(0, 2000), 16));
        var run = dir.File("run");

        var trained = CliRun.Lora("train", "--model", model, "--data", data, "--epochs", "1", "--max-length", "24", "--rank", "4",
            "--quantize", "nf4", "--double-quant", "--init", "loftq", "--output", run, "--json");
        var evaluated = CliRun.Lora("evaluate", "--model", Path.Combine(run, "model.zip"), "--data", data, "--json");
        var merged = CliRun.Lora("merge", "--model", Path.Combine(run, "model.zip"), "--output", dir.File("merged"));
        var exported = CliRun.Lora("export-adapter", "--model", Path.Combine(run, "model.zip"), "--output", dir.File("adapter"));

        trained.ExitCode.Should().Be(ExitCodes.Success, trained.Stderr);
        var log = File.ReadAllText(Path.Combine(run, "log.txt"));
        log.Should().Contain("kept as Nf4 with double quantization").And.Contain("LoftQ initialisation of");
        using (var options = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "options.json"))))
        {
            var lora = options.RootElement.GetProperty("lora");
            lora.GetProperty("doubleQuantization").GetBoolean().Should().BeTrue();
            lora.GetProperty("loftqIterations").GetInt32().Should().Be(1);
            // Options that are names read as names, so the file says what the run did.
            lora.GetProperty("baseQuantization").GetString().Should().Be("Nf4");
            lora.GetProperty("init").GetString().Should().Be("Loftq");
            lora.GetProperty("scaling").GetString().Should().Be("AlphaOverRank");
            lora.GetProperty("bias").GetString().Should().Be("None");
        }
        evaluated.ExitCode.Should().Be(ExitCodes.Success, evaluated.Stderr);
        using (var metrics = JsonDocument.Parse(evaluated.Stdout))
        using (var saved = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "metrics.json"))))
            metrics.RootElement.GetProperty("logLoss").GetDouble().Should().BeApproximately(
                saved.RootElement.GetProperty("logLoss").GetDouble(), 1e-9, "the reloaded model quantizes its base exactly as in training");
        merged.ExitCode.Should().Be(ExitCodes.Success, merged.Stderr);
        File.Exists(Path.Combine(dir.File("merged"), "model.safetensors")).Should().BeTrue();
        exported.ExitCode.Should().Be(ExitCodes.Success, exported.Stderr);
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.File("adapter"), "adapter_config.json")));
        config.RootElement.GetProperty("init_lora_weights").GetString().Should().Be("loftq");
        config.RootElement.GetProperty("loftq_config").GetProperty("loftq_bits").GetInt32().Should().Be(4);
    }
}
