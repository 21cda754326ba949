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

    /// <summary>Runs <paramref name="o"/>.Steps products after a few untimed ones.</summary>
    public static BenchmarkResult Run(BenchmarkOptions o)
    {
        torch.manual_seed(o.Seed);
        var dtype = o.Bf16 ? torch.bfloat16 : torch.float32;
        using var a = torch.randn(Size, Size).to(dtype);
        using var b = torch.randn(Size, Size).to(dtype);
        for (int i = 0; i < Math.Max(3, o.Warmup); i++) torch.matmul(a, b).Dispose();
        int steps = Math.Max(o.Steps, 10);
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++) torch.matmul(a, b).Dispose();
        double seconds = clock.Elapsed.TotalSeconds / steps;
        return new BenchmarkResult()
            .Set("anchor", "torchsharp")
            .Set("torch", torch.__version__)
            .Set("threads", torch.get_num_threads())
            .Set("mode", "matmul")
            .Set("dtype", o.Bf16 ? "bfloat16" : "float32")
            .Set("matmul_ms", seconds * 1000)
            .Set("matmul_gflops", 2.0 * Size * Size * Size / seconds / 1e9);
    }
}
