using System.Diagnostics;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>
/// The anchor's measurement: training steps (LoRA or full fine-tuning) on one synthetic batch, then inference on it.
/// A step is zero_grad(set_to_none) → forward → cross-entropy → backward → AdamW over the trainable parameters, as
/// torch_lora_bench.py does it; no gradient clipping.
/// </summary>
public static class TrainingBenchmark
{
    /// <summary>Runs <paramref name="o"/> (mode lora or full) and returns its figures.</summary>
    public static BenchmarkResult Run(BenchmarkOptions o)
    {
        if (o.Mode is not (BenchmarkMode.Lora or BenchmarkMode.Full)) throw new ArgumentException("TrainingBenchmark runs modes lora and full");
        var config = TransformerConfig.Load(o.Config!);
        using var model = BenchmarkModels.Create(config, o.Seed);
        bool lora = o.Mode == BenchmarkMode.Lora;
        if (lora) BenchmarkModels.ApplyLora(model, o.Rank, o.Alpha, o.Dropout);
        if (o.Bf16) model.UseBFloat16MatMul();
        if (o.Checkpointing) model.UseGradientCheckpointing();

        long trainableCount = model.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
        using var optimizer = BenchmarkModels.Optimizer(model, o);
        using var batch = SyntheticBatch.Create(config, o.Batch, o.Seq);

        double rssBeforeTraining = PeakMemory.CurrentRssMiB();
        model.train();
        for (int i = 0; i < o.Warmup; i++) TrainStep(model, optimizer, batch, null);
        var phases = new StepPhases();
        var train = new StepClock();
        for (int i = 0; i < o.Steps; i++) train.Time(() => TrainStep(model, optimizer, batch, phases));
        double trainSeconds = train.TotalSeconds;
        double peakAfterTraining = PeakMemory.PeakRssMiB();

        // Inference as the anchor measures it: the model as trained (adapters unmerged), eval mode, no autograd.
        model.eval();
        var inferClock = new StepClock();
        double inferUnmerged = InferenceThroughput(model, batch, Math.Min(1, o.Warmup), o.Steps, inferClock);
        double? inferMerged = null;
        if (lora)
        {
            // Our inference path: the adapters folded into the base weights (LoraLinear.Merge), so inference runs
            // exactly the base model's matrix products.
            BenchmarkModels.MergeAll(model);
            inferClock = new StepClock();
            inferMerged = InferenceThroughput(model, batch, Math.Min(1, o.Warmup), o.Steps, inferClock);
        }
        double? inferInt8 = null;
        if (lora && !o.Bf16 && !o.Checkpointing && Int8Scoring.IsAvailable)
        {
            // Precision = Int8: the merged weights rounded to int8, activations rounded per batch (Int8Scoring).
            model.QuantizeToInt8();
            inferInt8 = InferenceThroughput(model, batch, Math.Min(1, o.Warmup), o.Steps);
            model.DropInt8();
        }

        var result = new BenchmarkResult()
            .Set("anchor", "torchsharp")
            .Set("torch", torch.__version__)
            .Set("threads", torch.get_num_threads())
            .Set("mode", (lora ? "lora" : "full") + (o.Bf16 ? "-bf16" : "") + (o.Checkpointing ? "-ckpt" : ""))
            .Set("batch", o.Batch)
            .Set("seq", o.Seq)
            .Set("trainable", trainableCount)
            .Set("train_samples_per_s", o.Batch * o.Steps / trainSeconds)
            .Set("infer_samples_per_s", inferMerged ?? inferUnmerged)
            .Set("peak_rss_mib", PeakMemory.PeakRssMiB())
            .Set("config", Path.GetFileNameWithoutExtension(o.Config))
            .Set("family", config.Family)
            .Set("parameters", model.parameters().Sum(p => p.numel()))
            .Set("train_step_ms", train.MeanMs)
            .Set("train_step_min_ms", train.MinMs)
            .Set("train_step_median_ms", train.MedianMs)
            .Set("train_step_cpu_ms", train.CpuMsPerStep)
            .Set("forward_ms", phases.Forward.TotalMilliseconds / o.Steps)
            .Set("backward_ms", phases.Backward.TotalMilliseconds / o.Steps)
            .Set("optimizer_ms", phases.Optimizer.TotalMilliseconds / o.Steps)
            .Set("infer_batch_min_ms", inferClock.MinMs)
            .Set("infer_batch_cpu_ms", inferClock.CpuMsPerStep)
            .Set("infer_unmerged_samples_per_s", inferUnmerged)
            .Set("infer_int8_samples_per_s", inferInt8)
            .Set("rss_before_train_mib", rssBeforeTraining)
            .Set("peak_rss_after_train_mib", peakAfterTraining)
            .Set("steps", o.Steps)
            .Set("load_average", LoadAverage.OneMinute());
        return result;
    }

    /// <summary>Wall time spent in each phase of the timed steps.</summary>
    public sealed class StepPhases
    {
        /// <summary>Forward pass and loss.</summary>
        public TimeSpan Forward;
        /// <summary>Backward pass.</summary>
        public TimeSpan Backward;
        /// <summary>AdamW step and zero_grad.</summary>
        public TimeSpan Optimizer;
    }

    /// <summary>One training step. Every temporary dies with the dispose scope, so memory stays flat across steps.</summary>
    public static void TrainStep(nn.Module<ModelInput, Tensor> model, AdamWOptimizer optimizer, LabeledBatch batch, StepPhases? phases)
    {
        using var scope = torch.NewDisposeScope();
        long t0 = Stopwatch.GetTimestamp();
        model.zero_grad(set_to_none: true);
        var logits = model.forward(batch.Input);
        var loss = F.cross_entropy(logits, batch.Labels);
        long t1 = Stopwatch.GetTimestamp();
        loss.backward();
        long t2 = Stopwatch.GetTimestamp();
        optimizer.Step();
        long t3 = Stopwatch.GetTimestamp();
        if (phases is null) return;
        phases.Forward += Stopwatch.GetElapsedTime(t0, t1);
        phases.Backward += Stopwatch.GetElapsedTime(t1, t2);
        phases.Optimizer += Stopwatch.GetElapsedTime(t2, t3);
    }

    /// <summary>Samples per second of <paramref name="steps"/> forward passes without autograd (eval mode).</summary>
    public static double InferenceThroughput(nn.Module<ModelInput, Tensor> model, LabeledBatch batch, int warmup, int steps, StepClock? clock = null)
    {
        using var _ = torch.inference_mode();
        for (int i = 0; i < warmup; i++) Forward(model, batch.Input);
        clock ??= new StepClock();
        for (int i = 0; i < steps; i++) clock.Time(() => Forward(model, batch.Input));
        return batch.Size * steps / clock.TotalSeconds;
    }

    static void Forward(nn.Module<ModelInput, Tensor> model, ModelInput input)
    {
        using var scope = torch.NewDisposeScope();
        model.forward(input);
    }
}
