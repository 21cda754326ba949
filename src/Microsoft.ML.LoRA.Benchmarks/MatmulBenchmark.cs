using System.Diagnostics;
using TorchSharp;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>
/// Times a 1024 x 1024 x 1024 fp32 matrix product. The PyTorch anchor (Debian's 1.13 with OpenBLAS) and our libtorch
/// (2.10 with MKL) link different BLAS libraries; the ratio of this figure lets the comparison divide that out.
/// </summary>
public static class MatmulBenchmark
{
    /// <summary>Matrix side.</summary>
    public const int Size = 1024;

    /// <summary>Timed blocks; the figure is the fastest block's mean, as the anchor's script reports its own.</summary>
    public const int Blocks = 5;

    /// <summary>
    /// Runs <see cref="Blocks"/> blocks of <paramref name="o"/>.Steps products after a few untimed ones. The fastest
    /// block measures what the BLAS can do: on a shared 2-core machine a block now and then runs much slower than the
    /// others in the same process, and one such block would otherwise decide the ratio both sides are divided by
    /// (measured: docs/benchmarks.md, "Why the kernels are built as they are").
    /// </summary>
    public static BenchmarkResult Run(BenchmarkOptions o)
    {
        torch.manual_seed(o.Seed);
        var dtype = o.Bf16 ? torch.bfloat16 : torch.float32;
        using var a = torch.randn(Size, Size).to(dtype);
        using var b = torch.randn(Size, Size).to(dtype);
        for (int i = 0; i < Math.Max(3, o.Warmup); i++) torch.matmul(a, b).Dispose();
        int steps = Math.Max(o.Steps, 10);
        var blockMs = new List<double>();
        for (int block = 0; block < Blocks; block++)
        {
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < steps; i++) torch.matmul(a, b).Dispose();
            blockMs.Add(clock.Elapsed.TotalMilliseconds / steps);
        }
        double seconds = blockMs.Min() / 1000;
        return new BenchmarkResult()
            .Set("anchor", "torchsharp")
            .Set("torch", torch.__version__)
            .Set("threads", torch.get_num_threads())
            .Set("mode", "matmul")
            .Set("dtype", o.Bf16 ? "bfloat16" : "float32")
            .Set("matmul_ms", seconds * 1000)
            .Set("matmul_block_ms", string.Join(" ", blockMs.Select(ms => ms.ToString("F2", System.Globalization.CultureInfo.InvariantCulture))))
            .Set("matmul_gflops", 2.0 * Size * Size * Size / seconds / 1e9);
    }
}
