using System.Globalization;
using System.Text;
using TorchSharp;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>Dispatches a parsed command line to its benchmark.</summary>
public static class BenchmarkRunner
{
    /// <summary>
    /// Applies --threads and --interop-threads. Inter-op threads can only be set before libtorch starts its pool, so
    /// this runs before any tensor work.
    /// </summary>
    public static void ConfigureThreads(BenchmarkOptions o)
    {
        if (o.InteropThreads > 0) torch.set_num_interop_threads(o.InteropThreads);
        if (o.Threads > 0) torch.set_num_threads(o.Threads);
    }

    /// <summary>
    /// Runs the benchmark <paramref name="o"/> names. It seeds and draws from libtorch's global generator, so it holds
    /// <see cref="TorchRandomLock"/> and cannot disturb a reproducible fit running in the same process.
    /// </summary>
    public static BenchmarkResult Run(BenchmarkOptions o)
    {
        lock (TorchRandomLock.Sync) return Dispatch(o);
    }

    static BenchmarkResult Dispatch(BenchmarkOptions o) => o.Mode switch
    {
        BenchmarkMode.Lora or BenchmarkMode.Full => TrainingBenchmark.Run(o),
        BenchmarkMode.StepRatio => StepRatioBenchmark.Run(o),
        BenchmarkMode.InferMerged => MergedInferenceBenchmark.Run(o),
        BenchmarkMode.Padding => PaddingBenchmark.Run(o),
        BenchmarkMode.Matmul => MatmulBenchmark.Run(o),
        BenchmarkMode.PrecisionAccuracy => PrecisionAccuracyBenchmark.Run(o),
        BenchmarkMode.MlnetAnchor => MlnetAnchorBenchmark.RunSide(o),
        BenchmarkMode.Onnx => OnnxBenchmark.Run(o),
        BenchmarkMode.Qlora => QuantizedBaseBenchmark.Run(o),
        BenchmarkMode.AdapterSet => AdapterSetBenchmark.RunSide(o),
        _ => throw new ArgumentException($"mode {o.Mode} produces no measurement"),
    };

    /// <summary>A readable multi-line form of a result.</summary>
    public static string Describe(BenchmarkResult r)
    {
        var sb = new StringBuilder();
        foreach (var key in r.Keys)
        {
            var n = r.Number(key);
            sb.Append(CultureInfo.InvariantCulture, $"  {key,-32} {(double.IsNaN(n) ? r.Text(key) : n.ToString("0.##", CultureInfo.InvariantCulture))}\n");
        }
        return sb.ToString();
    }
}
