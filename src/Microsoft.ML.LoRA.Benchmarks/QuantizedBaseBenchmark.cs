using System.Diagnostics;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Models.Quantization;
using TorchSharp;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>
/// QLoRA's memory headline: a model built from a config with random weights, its transformer linear layers kept
/// quantized (--quantize nf4|fp4|int8, --double-quant; bf16|fp16 as a half-precision checkpoint's frozen weights are
/// kept; or none for the fp32 base it is compared with), LoRA on query
/// and value (q_proj, v_proj for LLaMA), then training steps on one synthetic batch. Each layer is quantized as soon as
/// it is built, so the fp32 model never exists whole. Reports peak RSS after building and after the steps, and seconds
/// per step. One configuration per process, so the peak belongs to it alone.
/// </summary>
public static class QuantizedBaseBenchmark
{
    /// <summary>Runs <paramref name="o"/> and returns its figures.</summary>
    public static BenchmarkResult Run(BenchmarkOptions o)
    {
        var config = TransformerConfig.Load(o.Config!);
        var quantization = QuantizedBase.For(o.Quantize, o.DoubleQuant);
        var build = Stopwatch.StartNew();
        torch.manual_seed(o.Seed);
        using var model = ModelFactory.Create(config, numLabels: 2, quantization);
        double buildSeconds = build.Elapsed.TotalSeconds;
        double peakAfterBuild = PeakMemory.PeakRssMiB();
        BenchmarkModels.ApplyLora(model, o.Rank, o.Alpha, o.Dropout);
        if (o.Checkpointing) model.UseGradientCheckpointing();
        var layers = model.named_modules().Select(m => m.module).OfType<LoraLinear>().ToList();
        long baseBytes = layers.Sum(l => l.BaseWeightBytes);
        long baseWeights = layers.Where(l => l.IsQuantized).Sum(l => l.InFeatures * l.OutFeatures);

        using var optimizer = BenchmarkModels.Optimizer(model, o);
        using var batch = SyntheticBatch.Create(config, o.Batch, o.Seq);
        model.train();
        for (int i = 0; i < o.Warmup; i++) TrainingBenchmark.TrainStep(model, optimizer, batch, null);
        var phases = new TrainingBenchmark.StepPhases();
        var clock = new StepClock();
        for (int i = 0; i < o.Steps; i++) clock.Time(() => TrainingBenchmark.TrainStep(model, optimizer, batch, phases));

        return new BenchmarkResult()
            .Set("anchor", "torchsharp")
            .Set("mode", "qlora")
            .Set("config", Path.GetFileNameWithoutExtension(o.Config))
            .Set("family", config.Family)
            .Set("quantize", o.Quantize.ToString().ToLowerInvariant() + (o.DoubleQuant ? "+dq" : ""))
            .Set("checkpointing", o.Checkpointing ? "yes" : "no")
            .Set("threads", torch.get_num_threads())
            .Set("batch", o.Batch)
            .Set("seq", o.Seq)
            .Set("parameters", ParameterCounts.Of(model).Total)
            .Set("trainable", model.parameters().Where(p => p.requires_grad).Sum(p => p.numel()))
            .Set("linear_base_mib", baseBytes / 1048576.0)
            .Set("bits_per_quantized_weight", baseWeights == 0 ? null : baseBytes * 8.0 / baseWeights)
            .Set("build_s", buildSeconds)
            .Set("peak_rss_after_build_mib", peakAfterBuild)
            .Set("peak_rss_mib", PeakMemory.PeakRssMiB())
            .Set("train_step_s", clock.MeanMs / 1000)
            .Set("train_step_min_s", clock.MinMs / 1000)
            .Set("forward_s", phases.Forward.TotalSeconds / o.Steps)
            .Set("backward_s", phases.Backward.TotalSeconds / o.Steps)
            .Set("steps", o.Steps)
            .Set("load_average", LoadAverage.OneMinute());
    }
}
