using Microsoft.ML.LoRA.Checkpoints;
using TorchSharp;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>
/// The LoRA step against the full fine-tuning step of the same model, measured in one process with the two kinds of
/// step interleaved (LoRA first in even pairs, full first in odd ones): each pair sees the same load on a shared
/// machine, so the ratio of a pair does not carry the drift between the separate processes of modes lora and full.
/// Reports the median of the pairs' ratios. A cross-check rather than the target's measurement: here the full steps'
/// gradient and optimizer allocations share the heap with the LoRA steps' activations (measured on a Zen 3: MiniLM
/// 0.74 interleaved against 0.60-0.76 in separate processes). Its peak RSS holds both models, so memory is compared by modes lora and full.
/// </summary>
public static class StepRatioBenchmark
{
    /// <summary>Runs <paramref name="o"/> (mode step-ratio): <c>o.Steps</c> pairs after <c>o.Warmup</c> untimed ones.</summary>
    public static BenchmarkResult Run(BenchmarkOptions o)
    {
        var config = TransformerConfig.Load(o.Config!);
        using var loraModel = BenchmarkModels.Create(config, o.Seed);
        using var fullModel = BenchmarkModels.Create(config, o.Seed);
        BenchmarkModels.ApplyLora(loraModel, o.Rank, o.Alpha, o.Dropout);
        loraModel.train();
        fullModel.train();
        using var loraOptimizer = BenchmarkModels.Optimizer(loraModel, o);
        using var fullOptimizer = BenchmarkModels.Optimizer(fullModel, o);
        using var batch = SyntheticBatch.Create(config, o.Batch, o.Seq);

        void LoraStep() => TrainingBenchmark.TrainStep(loraModel, loraOptimizer, batch, null);
        void FullStep() => TrainingBenchmark.TrainStep(fullModel, fullOptimizer, batch, null);
        for (int i = 0; i < o.Warmup; i++) { LoraStep(); FullStep(); }
        var lora = new StepClock();
        var full = new StepClock();
        for (int i = 0; i < o.Steps; i++)
        {
            if (i % 2 == 0) { lora.Time(LoraStep); full.Time(FullStep); }
            else { full.Time(FullStep); lora.Time(LoraStep); }
        }
        var ratios = lora.WallMs.Zip(full.WallMs, (l, f) => l / f).ToList();
        return new BenchmarkResult()
            .Set("anchor", "torchsharp")
            .Set("torch", torch.__version__)
            .Set("threads", torch.get_num_threads())
            .Set("mode", "step-ratio")
            .Set("batch", o.Batch)
            .Set("seq", o.Seq)
            .Set("config", Path.GetFileNameWithoutExtension(o.Config))
            .Set("lora_step_median_ms", lora.MedianMs)
            .Set("full_step_median_ms", full.MedianMs)
            .Set("lora_over_full", StepClock.Median(ratios))
            .Set("lora_over_full_cpu", lora.CpuMsPerStep / full.CpuMsPerStep)
            .Set("pairs", o.Steps)
            .Set("peak_rss_mib", PeakMemory.PeakRssMiB())   // both models together: not a figure of either
            .Set("load_average", LoadAverage.OneMinute());
    }
}
