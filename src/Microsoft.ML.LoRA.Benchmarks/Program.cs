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

switch (options.Mode)
{
    case BenchmarkMode.QualityData:
        if (options.Data is null || options.Output is null) { Console.Error.WriteLine("--mode quality-data needs --data <imdb folder> and --output <folder>"); return 2; }
        QualityData.WriteImdb(options.Data, options.Output, options.PerClass, options.Seed);
        return 0;
    case BenchmarkMode.RatingData:
        if (options.Data is null || options.Output is null) { Console.Error.WriteLine("--mode rating-data needs --data <imdb folder> and --output <folder>"); return 2; }
        QualityData.WriteImdbRatings(options.Data, options.Output, options.TrainRows, options.TestRows, options.Seed);
        return 0;
    case BenchmarkMode.SweepBest:
        if (options.Input is null) { Console.Error.WriteLine("--mode sweep-best needs --input <sweep folder>"); return 2; }
        Console.WriteLine(string.Join(' ', SweepBest.TrainArguments(options.Input)));
        return 0;
    case BenchmarkMode.QualityReport:
        if (options.Input is null) { Console.Error.WriteLine("--mode quality-report needs --input <runs folder>"); return 2; }
        var qualityRows = QualityReport.Read(options.Input);
        Console.WriteLine(QualityReport.Markdown(qualityRows));
        if (options.Output is not null && qualityRows.Count > 0)
            QualityChart.Render(qualityRows, options.Output, options.Title ?? "Fine-tuning methods: accuracy over seeds");
        return 0;
    case BenchmarkMode.MlnetAnchor when options.Side is null:
        return MlnetAnchorBenchmark.RunAll(options, args);
    case BenchmarkMode.AdapterSet when options.Side is null:
        return AdapterSetBenchmark.RunAll(options, args);
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
