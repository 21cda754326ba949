using Microsoft.ML.LoRA.Benchmarks;
using TorchSharp;

// The benchmark program: one configuration per process (so peak RSS belongs to that configuration alone), one JSON
// line on stdout. run-vs-pytorch.sh runs it beside the PyTorch anchor; docs/benchmarks.md explains the figures.
BenchmarkOptions options;
try
{
    options = BenchmarkOptions.Parse(args);
}
catch (Exception e) when (e is ArgumentException or FormatException)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(BenchmarkOptions.Usage);
    return 2;
}

if (options.Mode == BenchmarkMode.Report)
{
    if (options.Input is null)
    {
        Console.Error.WriteLine("--mode report needs --input <results.jsonl>");
        return 2;
    }
    var results = BenchmarkReport.ReadResults(options.Input);
    var rows = BenchmarkReport.Rows(results);
    Console.WriteLine(BenchmarkReport.Markdown(rows));
    Console.WriteLine(BenchmarkReport.RawFigures(results));
    if (options.Output is not null && rows.Count > 0) ComparisonChart.Render(rows, options.Output);
    return 0;
}

// Before the first torch call: libgomp reads OMP_WAIT_POLICY when libtorch loads.
var waitPolicy = OpenMpWaitPolicy.Apply(options.OmpWait);
BenchmarkRunner.ConfigureThreads(options);
var result = BenchmarkRunner.Run(options);
result.Set("omp_wait_policy", waitPolicy);
result.Set("allocator_tuned", Microsoft.ML.LoRA.NativeRuntimeTuning.AllocatorTuned ? "yes" : "no");
result.Set("mkl_any_vendor", Microsoft.ML.LoRA.NativeRuntimeTuning.MklDispatchesByInstructionSet ? "yes" : "no: " + Microsoft.ML.LoRA.NativeRuntimeTuning.MklDispatchNote);
Console.WriteLine(result.ToJson());
if (!options.Json) Console.Error.WriteLine(BenchmarkRunner.Describe(result));
return 0;
