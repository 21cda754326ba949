using System.Text.Json;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary><c>lora train --method</c> chooses what trains, records it, and export-adapter refuses non-LoRA models.</summary>
public class TrainMethodTests
{
    [Fact]
    public void A_head_only_run_records_its_method_and_export_adapter_refuses_it_with_a_hint()
    {
        using var dir = new TempDir();
        var model = TinyCheckpoint.Bert(dir.File("bert"), hidden: 32, seed: 2);
        var data = TextData.WriteTsv(dir.File("train.tsv"), TextData.Balanced(TextData.SmsSpam(0, 2000), 16));
        var run = dir.File("run");

        var trained = CliRun.Lora("train", "--model", model, "--data", data, "--epochs", "1", "--max-length", "24", "--method", "head", "--output", run, "--json");
        var export = CliRun.Lora("export-adapter", "--model", Path.Combine(run, "model.zip"), "--output", dir.File("adapter"));

        trained.ExitCode.Should().Be(ExitCodes.Success, trained.Stderr);
        File.ReadAllText(Path.Combine(run, "log.txt")).Should().Contain("Head-only fine-tuning; training 66 of");
        using var options = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "options.json")));
        options.RootElement.GetProperty("method").GetString().Should().Be("head");
        options.RootElement.GetProperty("maxGradientNorm").GetDouble().Should().Be(0, "by default training matches a plain PyTorch loop: no clipping");
        options.RootElement.GetProperty("lengthBucketing").GetBoolean().Should().BeFalse("and plain shuffled batches");
        export.ExitCode.Should().Be(ExitCodes.InvalidInput);
        export.Stderr.Should().Contain("fine-tuned with method 'head', not LoRA").And.Contain("lora merge");
    }

    [Theory]
    [InlineData("last-layers:0")]
    [InlineData("dora")]
    public void A_bad_method_is_a_usage_error_naming_the_accepted_forms(string method)
    {
        var result = CliRun.Lora("train", "--model", "unused", "--data", "unused.tsv", "--method", method);

        result.ExitCode.Should().Be(ExitCodes.Usage);
        result.Stderr.Should().Contain("--method").And.Contain("last-layers:N");
    }

    [Fact]
    public async Task Offline_without_the_default_Hub_model_the_error_points_to_the_pre_trained_model_on_this_machine()
    {
        using var dir = new TempDir();
        var data = TextData.WriteTsv(dir.File("train.tsv"), TextData.Balanced(TextData.SmsSpam(0, 200), 4));

        var result = await ProcessRun.Lora(new Dictionary<string, string> { ["HF_HOME"] = dir.File("empty-cache") },
            "train", "--offline", "--data", data, "--output", dir.File("run"));

        result.ExitCode.Should().NotBe(ExitCodes.Success);
        result.Stderr.Should().Contain("--model " + SharedData.PretrainedBert).And.Contain("small pre-trained BERT");
    }
}
