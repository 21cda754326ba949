using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Export;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Onnx;
using TorchSharp;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>
/// Scoring speed of one model six ways, on the same synthetic batch: our TorchSharp scoring in fp32 and in int8
/// (<see cref="Int8Scoring"/>), and ONNX Runtime on the fp32 and int8 exports (<see cref="OnnxExport"/>; all graph
/// optimizations, as many intra-op threads as libtorch has), each also with its sequence axis fixed to the batch's
/// length (<see cref="OnnxScoringOptions.FixedSequenceLength"/>: fused residual LayerNorms). The model is built from --config with random weights
/// and a LoRA adapter on query and value whose B is random, so the export merges a real update. Rounds interleave
/// the six (one machine load per round); each figure is the median over rounds. The logit differences against
/// TorchSharp fp32 come with it.
/// </summary>
public static class OnnxBenchmark
{
    public static BenchmarkResult Run(BenchmarkOptions o)
    {
        var config = TransformerConfig.Load(o.Config!);
        using var model = BenchmarkModels.Create(config, o.Seed);
        BenchmarkModels.ApplyLora(model, o.Rank, o.Alpha, o.Dropout);
        using (torch.no_grad())
            foreach (var layer in LoraInjector.LinearLayers(model).Values.Where(l => l.HasAdapter))
                layer.LoraB.normal_(0, 0.02);
        model.eval();
        using var batch = SyntheticBatch.Create(config, o.Batch, o.Seq);
        var labels = new[] { "0", "1" };

        var root = Path.Combine(Path.GetTempPath(), "lora-onnx-benchmark-" + Environment.ProcessId);
        try
        {
            var fp32Folder = Path.Combine(root, "fp32");
            var int8Folder = Path.Combine(root, "int8");
            var fp32Export = OnnxExport.Export(model, labels, fp32Folder);
            var int8Export = OnnxExport.Export(model, labels, int8Folder, new OnnxExportOptions { Precision = OnnxPrecision.Int8 });
            var scoring = new OnnxScoringOptions { IntraOpThreads = torch.get_num_threads() };
            using var ortFp32 = OnnxTextClassifier.Load(fp32Folder, scoring);
            using var ortInt8 = OnnxTextClassifier.Load(int8Folder, scoring);
            int rows = (int)batch.Size, seq = (int)batch.Length;
            // The same graphs with the sequence axis fixed to the batch's length, so ONNX Runtime fuses the residual LayerNorms.
            var fixedLength = scoring with { FixedSequenceLength = seq };
            using var ortFp32Fixed = OnnxTextClassifier.Load(fp32Folder, fixedLength);
            using var ortInt8Fixed = OnnxTextClassifier.Load(int8Folder, fixedLength);

            var ids = batch.Input.InputIds.data<long>().ToArray();
            var mask = batch.Input.AttentionMask.data<long>().ToArray();
            var types = batch.Input.TokenTypeIds?.data<long>().ToArray();
            float[][] TorchLogits()
            {
                using var _ = torch.inference_mode();
                using var logits = model.forward(batch.Input);
                var flat = logits.data<float>().ToArray();
                return Enumerable.Range(0, rows).Select(i => flat.AsSpan(i * 2, 2).ToArray()).ToArray();
            }

            model.UseForScoring(ComputePrecision.Float32);
            var reference = TorchLogits();
            var variants = new List<(string Name, Func<float[][]> Score, Action Prepare)>
            {
                ("torch_fp32", TorchLogits, () => model.UseForScoring(ComputePrecision.Float32)),
                ("ort_fp32", () => ortFp32.Run(rows, seq, ids, mask, types), () => { }),
                ("ort_int8", () => ortInt8.Run(rows, seq, ids, mask, types), () => { }),
                ("ort_fp32_fixed_seq", () => ortFp32Fixed.Run(rows, seq, ids, mask, types), () => { }),
                ("ort_int8_fixed_seq", () => ortInt8Fixed.Run(rows, seq, ids, mask, types), () => { }),
            };
            if (Int8Scoring.IsAvailable) variants.Insert(1, ("torch_int8", TorchLogits, () => model.UseForScoring(ComputePrecision.Int8)));

            var result = new BenchmarkResult()
                .Set("anchor", "torchsharp+onnxruntime")
                .Set("torch", torch.__version__)
                .Set("threads", torch.get_num_threads())
                .Set("mode", "onnx")
                .Set("batch", o.Batch)
                .Set("seq", o.Seq)
                .Set("config", Path.GetFileNameWithoutExtension(o.Config))
                .Set("family", config.Family)
                .Set("onnx_fp32_mib", fp32Export.ModelBytes / 1048576.0)
                .Set("onnx_int8_mib", int8Export.ModelBytes / 1048576.0);

            var times = variants.ToDictionary(v => v.Name, _ => new List<double>());
            foreach (var (name, score, prepare) in variants)
            {
                prepare();
                var logits = score();   // warm-up, and the accuracy figure
                result.Set($"{name}_max_logit_diff_vs_torch_fp32", Diagnostics.LogitsCases.MaxAbsDifference(logits, reference));
            }
            int rounds = Math.Max(o.Steps, 5);
            for (int r = 0; r < rounds; r++)
                foreach (var (name, score, prepare) in variants)
                {
                    prepare();
                    var clock = new StepClock();
                    for (int i = 0; i < 2; i++) clock.Time(() => score());
                    times[name].Add(rows * 2 / clock.TotalSeconds);
                }
            model.UseForScoring(ComputePrecision.Float32);
            foreach (var (name, list) in times) result.Set($"{name}_samples_per_s", StepClock.Median(list));
            return result.Set("rounds", rounds).Set("peak_rss_mib", PeakMemory.PeakRssMiB());
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }
}
