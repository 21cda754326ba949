using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Diagnostics;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>
/// What bf16 matrix products (<see cref="MixedPrecision"/>) and int8 scoring (<see cref="Int8Scoring"/>) cost in
/// accuracy: the reference fixtures' logits (with their PEFT adapters) in fp32, bf16 and int8, and, with --config, a
/// random model of that size on a synthetic batch. Differences are reported absolute and relative to the spread
/// (standard deviation) of the fp32 logits, with the share of examples whose predicted class stays the same.
/// </summary>
public static class PrecisionAccuracyBenchmark
{
    /// <summary>Runs <paramref name="o"/> (mode precision-accuracy).</summary>
    public static BenchmarkResult Run(BenchmarkOptions o)
    {
        var result = new BenchmarkResult()
            .Set("anchor", "torchsharp")
            .Set("torch", torch.__version__)
            .Set("mode", "precision-accuracy")
            .Set("cpu_bf16_native", MixedPrecision.IsAccelerated)
            .Set("int8_available", Int8Scoring.IsAvailable);
        if (o.Fixtures is { } root)
        {
            foreach (var dir in Directory.GetDirectories(root).OrderBy(d => d, StringComparer.Ordinal))
            {
                if (!File.Exists(Path.Combine(dir, "cases.json"))) continue;
                var name = Path.GetFileName(dir);
                var cases = LogitsCases.Load(Path.Combine(dir, "cases.json"));
                using var model = PretrainedModel.Load(dir);
                if (Directory.Exists(Path.Combine(dir, "adapter"))) PeftAdapter.Load(model, Path.Combine(dir, "adapter"));
                var fp32 = cases.Run(model);
                Compare(result, name, fp32, model, m => cases.Run(m));
                var reference = cases.LogitsWithAdapter ?? cases.Logits;
                if (reference is not null) result.Set($"{name}_fp32_vs_reference_max_abs", LogitsCases.MaxAbsDifference(fp32, reference));
            }
        }
        if (o.Config is not null)
        {
            var config = TransformerConfig.Load(o.Config);
            using var model = BenchmarkModels.Create(config, o.Seed);
            model.eval();
            using var batch = SyntheticBatch.Create(config, o.Batch, o.Seq);
            Compare(result, Path.GetFileNameWithoutExtension(o.Config), Logits(model, batch), model, m => Logits(m, batch));
        }
        return result;
    }

    static float[][] Logits(SequenceClassifier model, LabeledBatch batch)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.inference_mode();
        var logits = model.forward(batch.Input).to_type(ScalarType.Float32);
        int width = (int)logits.shape[1];
        var flat = logits.data<float>().ToArray();
        return Enumerable.Range(0, (int)logits.shape[0]).Select(i => flat.AsSpan(i * width, width).ToArray()).ToArray();
    }

    /// <summary>Sets <paramref name="name"/>'s figures for bf16 products and int8 scoring against <paramref name="fp32"/>, leaving the model in fp32.</summary>
    static void Compare(BenchmarkResult result, string name, float[][] fp32, SequenceClassifier model, Func<SequenceClassifier, float[][]> run)
    {
        model.UseForScoring(ComputePrecision.BFloat16);
        Compare(result, $"{name}_bf16", fp32, run(model));
        if (Int8Scoring.IsAvailable)
        {
            model.UseForScoring(ComputePrecision.Int8);
            Compare(result, $"{name}_int8", fp32, run(model));
        }
        model.UseForScoring(ComputePrecision.Float32);
    }

    static void Compare(BenchmarkResult result, string key, float[][] fp32, float[][] other)
    {
        double maxAbs = LogitsCases.MaxAbsDifference(fp32, other);
        var all = fp32.SelectMany(r => r).Select(v => (double)v).ToArray();
        double mean = all.Average();
        double spread = Math.Sqrt(all.Sum(v => (v - mean) * (v - mean)) / Math.Max(1, all.Length - 1));
        static int ArgMax(float[] r) => Array.IndexOf(r, r.Max());
        double agree = fp32.Zip(other).Count(p => ArgMax(p.First) == ArgMax(p.Second)) / (double)fp32.Length;
        result.Set($"{key}_max_abs", Math.Round(maxAbs, 5))
            .Set($"{key}_max_rel_to_spread", spread > 0 ? maxAbs / spread : double.NaN)
            .Set($"{key}_same_prediction", agree);
    }
}
