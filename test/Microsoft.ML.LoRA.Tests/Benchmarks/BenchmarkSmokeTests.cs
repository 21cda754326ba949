using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Benchmarks;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Benchmarks;

/// <summary>
/// Keeps the benchmark program working: each mode runs in-process on a tiny BERT (2 steps, batch 2, seq 16) and must
/// report positive figures. A smoke test only: no timing is asserted.
/// </summary>
public class BenchmarkSmokeTests
{
    static string TinyConfig(TempDir dir)
    {
        // BERT-shaped and tiny, but with the real WordPiece vocabulary so the padding mode can tokenize IMDb text.
        var config = new JsonObject
        {
            ["model_type"] = "bert", ["hidden_size"] = 32, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 2,
            ["intermediate_size"] = 64, ["max_position_embeddings"] = 64, ["vocab_size"] = 30522, ["type_vocab_size"] = 2,
        };
        var path = dir.File("config.json");
        File.WriteAllText(path, config.ToJsonString());
        return path;
    }

    [Theory]
    [InlineData("lora", "train_samples_per_s")]
    [InlineData("full", "train_samples_per_s")]
    [InlineData("step-ratio", "lora_over_full")]
    [InlineData("infer-merged", "infer_merged_samples_per_s")]
    [InlineData("padding", "train_bucketed_samples_per_s")]
    [InlineData("onnx", "ort_fp32_samples_per_s")]
    public void A_tiny_run_of_each_mode_reports_positive_throughput(string mode, string throughputKey)
    {
        using var dir = new TempDir();
        var args = new List<string> { "--config", TinyConfig(dir), "--mode", mode, "--steps", "2", "--warmup", "1", "--batch", "2", "--seq", "16", "--json" };
        if (mode == "padding")
            args.AddRange(new[] { "--data", SharedData.Data("imdb", "test.csv.gz"), "--vocab", Path.Combine(SharedData.BertTokenizer, "vocab.txt"),
                "--samples", "8", "--max-length", "32" });

        var result = BenchmarkRunner.Run(BenchmarkOptions.Parse(args));

        result.Number(throughputKey).Should().BePositive();
        result.Number("peak_rss_mib").Should().BePositive();
        if (mode is "lora" or "full") result.Number("infer_samples_per_s").Should().BePositive();
        if (mode == "lora") result.Number("infer_int8_samples_per_s").Should().BePositive("LoRA runs also time int8 scoring");
        if (mode == "infer-merged") result.Number("merged_vs_unmerged_max_logit_diff").Should().BeLessThan(1e-3);
        if (mode == "onnx")
        {
            result.Number("torch_fp32_samples_per_s").Should().BePositive();
            result.Number("ort_int8_samples_per_s").Should().BePositive();
            result.Number("onnx_fp32_mib").Should().BePositive();
            result.Number("ort_fp32_max_logit_diff_vs_torch_fp32").Should().BeLessThan(1e-3, "the fp32 export scores as the model does");
            result.Number("ort_int8_max_logit_diff_vs_torch_fp32").Should().BePositive("int8 rounds");
        }
        if (mode == "padding")
        {
            // Grouping by length can only remove padding, and it removes more attention pairs than tokens:
            // padded width² / width² of a shorter batch ≥ padded width / its width.
            result.Number("token_ceiling").Should().BeGreaterThanOrEqualTo(1);
            result.Number("attention_ceiling").Should().BeGreaterThanOrEqualTo(result.Number("token_ceiling"));
        }
        JsonNode.Parse(result.ToJson()).Should().BeOfType<JsonObject>();
    }

    [Fact]
    public void Each_arrangement_of_the_adapter_set_mode_reports_its_memory_and_times()
    {
        using var dir = new TempDir();
        var common = new[] { "--config", TinyConfig(dir), "--mode", "adapter-set", "--vocab", Path.Combine(SharedData.BertTokenizer, "vocab.txt"),
            "--batch", "4", "--seq", "12", "--steps", "2", "--json" };
        lock (Microsoft.ML.LoRA.TorchRandomLock.Sync) AdapterSetBenchmark.Prepare(BenchmarkOptions.Parse(common), dir.File("models"));

        var sides = new[] { "base", "set", "separate" }.ToDictionary(side => side,
            side => BenchmarkRunner.Run(BenchmarkOptions.Parse(common.Concat(new[] { "--side", side, "--input", dir.File("models") }).ToList())));

        foreach (var (side, result) in sides)
        {
            result.Number("peak_rss_mib").Should().BePositive(side);
            result.Number("rss_loaded_mib").Should().BePositive(side);
            result.Number("batch_ms").Should().BePositive(side);
        }
        sides["set"].Number("adapter_bytes").Should().BePositive();
        sides["set"].Number("switch_ms").Should().BePositive();
        sides["set"].Number("mixed_batch_ms").Should().BePositive();
    }

    [Fact]
    public void The_precision_accuracy_mode_reports_bf16_and_int8_logit_changes_for_each_fixture()
    {
        var result = BenchmarkRunner.Run(BenchmarkOptions.Parse(new[] { "--mode", "precision-accuracy", "--fixtures", Path.Combine(SharedData.Root, "fixtures"), "--json" }));

        foreach (var family in new[] { "bert", "distilbert", "roberta", "gpt2" })
        {
            result.Number($"{family}_bf16_max_abs").Should().BePositive(family);
            result.Number($"{family}_int8_max_abs").Should().BePositive(family);
            result.Number($"{family}_int8_same_prediction").Should().BeInRange(0, 1);
            result.Number($"{family}_fp32_vs_reference_max_abs").Should().BeLessThan(1e-3, "fp32 is the baseline both are compared with");
        }
    }

    [Fact]
    public void The_report_compares_ours_with_the_anchor_and_draws_the_chart()
    {
        using var dir = new TempDir();
        var results = dir.File("results.jsonl");
        File.WriteAllLines(results, new[]
        {
            """{"anchor":"torchsharp","mode":"matmul","matmul_ms":20}""",
            """{"anchor":"pytorch-eager","mode":"matmul","matmul_ms":30}""",
            """{"anchor":"torchsharp","config":"tiny","mode":"lora","train_samples_per_s":300,"infer_samples_per_s":900,"infer_int8_samples_per_s":1200,"train_step_ms":100,"peak_rss_mib":400,"rss_before_train_mib":300}""",
            """{"anchor":"torchsharp","config":"tiny","mode":"full","train_samples_per_s":200,"infer_samples_per_s":900,"train_step_ms":160,"peak_rss_mib":800}""",
            """{"config":"tiny","anchor":"pytorch-eager","mode":"lora","batch":32,"train_samples_per_s":100,"infer_samples_per_s":300,"peak_rss_mib":450}""",
            """{"anchor":"torchsharp","config":"tiny","mode":"step-ratio","lora_over_full":0.65,"lora_step_median_ms":90}""",
            """{"anchor":"torchsharp","config":"tiny","mode":"step-ratio","lora_over_full":0.90,"lora_step_median_ms":80}""",
            """{"anchor":"torchsharp","config":"tiny","mode":"step-ratio","lora_over_full":0.68,"lora_step_median_ms":85}""",
            """{"anchor":"torchsharp","config":"tiny","mode":"infer-merged","merged_over_base":1.01,"infer_base_samples_per_s":1000,"infer_merged_samples_per_s":1010}""",
            """{"anchor":"torchsharp","config":"tiny","mode":"infer-merged","merged_over_base":0.99,"infer_base_samples_per_s":800,"infer_merged_samples_per_s":790}""",
            """{"anchor":"torchsharp","config":"tiny","mode":"infer-merged","merged_over_base":1.00,"infer_base_samples_per_s":900,"infer_merged_samples_per_s":1100}""",
            """{"anchor":"torchsharp","config":"tiny","mode":"padding","train_padded_samples_per_s":10,"train_bucketed_samples_per_s":12,"infer_padded_samples_per_s":20,"infer_bucketed_samples_per_s":23,"train_speedup":1.2,"infer_speedup":1.15,"token_ceiling":1.25,"attention_ceiling":1.45}""",
            "not json",
        });

        var rows = BenchmarkReport.Rows(BenchmarkReport.ReadResults(results));
        ComparisonChart.Render(rows, dir.File("chart.png"));

        var lora = rows.Single(r => r.Label == "tiny: LoRA train vs PyTorch");
        lora.Raw.Should().BeApproximately(3.0, 1e-9);
        lora.Normalised.Should().BeApproximately(2.0, 1e-9);
        rows.Single(r => r.Label == "tiny: LoRA/full step time").Met.Should().BeTrue();
        var int8 = rows.Single(r => r.Label == "tiny: inference, int8 scoring (Precision = Int8), vs PyTorch fp32");
        int8.Raw.Should().BeApproximately(4.0, 1e-9);
        int8.Target.Should().BeNull("the 1.5x target is the fp32 row's");
        var interleaved = rows.Single(r => r.Label == "tiny: LoRA/full step time, interleaved in one process");
        interleaved.Raw.Should().BeApproximately(0.68, 1e-9, "the median of the runs' paired ratios, not the last run's");
        interleaved.Target.Should().BeNull("a cross-check beside the per-process figure, which carries the target");
        rows.Single(r => r.Label == "tiny: merged/base inference").Raw
            .Should().BeApproximately(1.00, 1e-9, "the median of the runs' paired ratios, not best merged over best base (1.10)");
        var floor = rows.Single(r => r.Label == "tiny: LoRA RSS before training/full peak RSS");
        floor.Raw.Should().BeApproximately(300.0 / 800, 1e-9, "what the LoRA process held before training, over full fine-tuning's peak");
        floor.Target.Should().BeNull();
        rows.Single(r => r.Label == "tiny: bucketing ceiling, attention pairs").Raw.Should().BeApproximately(1.45, 1e-9);
        rows.Single(r => r.Label == "tiny: bucketed/padded train").Raw.Should().BeApproximately(1.2, 1e-9);
        BenchmarkReport.Markdown(rows).Should().Contain("| tiny: LoRA train vs PyTorch | 3.00 | 2.00 | ≥ 1.30 | yes |");
        new FileInfo(dir.File("chart.png")).Length.Should().BePositive();
    }
}
