using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Diagnostics;
using Microsoft.ML.LoRA.Export;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Onnx;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.LoRA.Tests.Cli;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Export;

/// <summary>
/// <c>lora export-onnx</c> on a trained run: the folder alone scores texts through ONNX Runtime with the logits of
/// the saved model (TorchSharp) within 1e-4; options the exporter cannot write are refused with a message that says
/// why, and every family the library trains has a graph.
/// </summary>
public class OnnxExportRunTests(TrainedRun run) : IClassFixture<TrainedRun>
{
    /// <summary>SMS-spam rows neither training (rows 0-1999) nor validation (3000-4999) of the run read.</summary>
    static readonly string[] TestTexts = TextData.SmsSpam(2000, 1000).Select(r => r.Text).ToArray();

    float[][] TorchLogits(IReadOnlyList<string> texts)
    {
        var model = new MLContext(seed: 1).Model.LoadWithLora(run.Model, out _);
        try { return PipelineStages.LoraStage(model).Logits(texts.ToArray(), null); }
        finally { PipelineStages.LoraStage(model).Dispose(); }
    }

    [Fact]
    public void The_exported_folder_alone_scores_texts_as_the_saved_model_does()
    {
        run.Result.ExitCode.Should().Be(ExitCodes.Success, run.Result.Stderr);
        using var dir = new TempDir();
        var result = CliRun.Lora("export-onnx", "--model", run.Model, "--output", dir.Path);

        result.ExitCode.Should().Be(ExitCodes.Success, result.Stderr);
        result.Stdout.Should().Contain("model.onnx").And.Contain("vocab.txt").And.Contain("input_ids, attention_mask, token_type_ids");
        using var scorer = OnnxTextClassifier.Load(dir.Path);
        scorer.Labels.Should().Equal("ham", "spam");
        scorer.Description.MaxSequenceLength.Should().Be(48, "the run trained with --max-length 48");
        var texts = TestTexts.Take(200).ToArray();
        var onnx = scorer.Logits(texts);
        LogitsCases.MaxAbsDifference(onnx, TorchLogits(texts)).Should().BeLessThan(1e-4);
        scorer.PredictProbabilities(texts[0]).Sum().Should().BeApproximately(1f, 1e-5f);
    }

    [Fact]
    public void Unsupported_options_are_refused_before_anything_is_written()
    {
        using var dir = new TempDir();
        var output = Path.Combine(dir.Path, "out");
        CliRun.Lora("export-onnx", "--model", run.Model, "--output", output, "--opset", "16").ShouldFailCleanly(ExitCodes.InvalidInput, "opset 16", "17 to 21");
        CliRun.Lora("export-onnx", "--model", run.Model, "--output", output, "--opset", "22").ShouldFailCleanly(ExitCodes.InvalidInput, "opset 22", "17 to 21");
        CliRun.Lora("export-onnx", "--model", run.Model, "--output", output, "--precision", "bf16").ShouldFailCleanly(ExitCodes.Usage, "bf16");
        Directory.Exists(output).Should().BeFalse();
    }

    [Fact]
    public void Every_registered_family_has_a_graph()
    {
        foreach (var family in ModelFamilies.All)
            OnnxFamilyGraphs.Supported.Should().Contain(s => s.StartsWith(family.Name, StringComparison.Ordinal), family.Name);
        OnnxFamilyGraphs.Refusal(new TransformerConfig { Family = "t5", ModelType = "t5" }).Should().Contain("t5").And.Contain("cannot be exported");
    }
}
