using System.Diagnostics;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Lora;
using TorchSharp;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>
/// Inference cost of a merged LoRA model against its base model: two models from the same seed, the second with
/// trained-looking adapters (random B) merged in, timed in alternating rounds so drift in machine load hits both alike.
/// The unmerged adapter model is timed afterwards for contrast.
/// </summary>
public static class MergedInferenceBenchmark
{
    /// <summary>
    /// Runs <paramref name="o"/> (mode infer-merged): max(--steps, 10) rounds, each running every model for at least
    /// 2 batches and a quarter of a second, so small models get enough batches per round to be timed fairly.
    /// </summary>
    public static BenchmarkResult Run(BenchmarkOptions o)
    {
        var config = TransformerConfig.Load(o.Config!);
        using var baseModel = BenchmarkModels.Create(config, o.Seed);
        using var loraModel = BenchmarkModels.Create(config, o.Seed);
        BenchmarkModels.ApplyLora(loraModel, o.Rank, o.Alpha, o.Dropout);
        using (torch.no_grad())
            foreach (var layer in LoraInjector.LinearLayers(loraModel).Values.Where(l => l.HasAdapter))
                layer.LoraB.normal_(0, 0.02); // B = 0 would merge nothing; make the adapter change the weights
        baseModel.eval();
        loraModel.eval();
        using var batch = SyntheticBatch.Create(config, o.Batch, o.Seq);

        double unmergedDiff = MaxLogitDifference(loraModel, batch, merge: true);
        var baseRounds = new List<double>();
        var mergedRounds = new List<double>();
        double firstBatch = 1.0 / TrainingBenchmark.InferenceThroughput(baseModel, batch, 0, 1) * batch.Size;
        TrainingBenchmark.InferenceThroughput(loraModel, batch, 0, 1);
        int perRound = Math.Max(2, (int)Math.Ceiling(0.25 / Math.Max(firstBatch, 1e-4)));
        int rounds = Math.Max(o.Steps, 10);
        for (int r = 0; r < rounds; r++)
        {
            baseRounds.Add(TrainingBenchmark.InferenceThroughput(baseModel, batch, 0, perRound));
            mergedRounds.Add(TrainingBenchmark.InferenceThroughput(loraModel, batch, 0, perRound));
        }
        BenchmarkModels.UnmergeAll(loraModel);
        var unmergedRounds = Enumerable.Range(0, Math.Max(3, rounds / 2))
            .Select(_ => TrainingBenchmark.InferenceThroughput(loraModel, batch, 0, perRound)).ToList();

        double baseMedian = StepClock.Median(baseRounds), mergedMedian = StepClock.Median(mergedRounds);
        // Each round times both models back to back, so a round's ratio sees one machine load: the median of those
        // paired ratios, rather than a ratio of medians that drift in load can pull apart.
        double pairedRatio = StepClock.Median(mergedRounds.Zip(baseRounds, (m, b) => m / b).ToList());
        return new BenchmarkResult()
            .Set("anchor", "torchsharp")
            .Set("torch", torch.__version__)
            .Set("threads", torch.get_num_threads())
            .Set("mode", "infer-merged")
            .Set("batch", o.Batch)
            .Set("seq", o.Seq)
            .Set("config", Path.GetFileNameWithoutExtension(o.Config))
            .Set("infer_base_samples_per_s", baseMedian)
            .Set("infer_merged_samples_per_s", mergedMedian)
            .Set("infer_unmerged_samples_per_s", StepClock.Median(unmergedRounds))
            .Set("merged_over_base", pairedRatio)
            .Set("merged_vs_unmerged_max_logit_diff", unmergedDiff)
            .Set("rounds", rounds)
            .Set("batches_per_round", perRound)
            .Set("peak_rss_mib", PeakMemory.PeakRssMiB());
    }

    /// <summary>Logits before and after merging should agree to float rounding; returns the largest difference.</summary>
    static double MaxLogitDifference(Models.SequenceClassifier model, LabeledBatch batch, bool merge)
    {
        using var _ = torch.inference_mode();
        using var before = model.forward(batch.Input);
        if (merge) BenchmarkModels.MergeAll(model);
        using var after = model.forward(batch.Input);
        using var diff = (before - after).abs().max();
        return diff.item<float>();
    }
}
