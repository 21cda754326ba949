using System.Globalization;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>What to measure.</summary>
public enum BenchmarkMode
{
    /// <summary>LoRA training steps (query/value adapters, head trained), then inference.</summary>
    Lora,
    /// <summary>Full fine-tuning steps (every parameter trained), then inference.</summary>
    Full,
    /// <summary>Inference of the base model against the same model with a merged LoRA adapter.</summary>
    InferMerged,
    /// <summary>IMDb text at real lengths: every batch padded to the maximum against length-bucketed dynamic padding.</summary>
    Padding,
    /// <summary>A 1024 x 1024 x 1024 fp32 matrix product, to normalise for the BLAS each side links.</summary>
    Matmul,
    /// <summary>LoRA and full fine-tuning steps of the same model interleaved in one process: their time ratio.</summary>
    StepRatio,
    /// <summary>Accuracy cost of bf16 matrix products and int8 scoring: fixture logits (and a random model's) against fp32.</summary>
    PrecisionAccuracy,
    /// <summary>Prints the comparison tables of a results file written by run-vs-pytorch.sh, and renders the chart.</summary>
    Report,
    /// <summary>Writes the balanced IMDb training and test sets of the fine-tuning quality table (quality.sh).</summary>
    QualityData,
    /// <summary>Writes IMDb reviews with their 1-10 rating, a seeded shuffle's first rows, for regression (regression.sh).</summary>
    RatingData,
    /// <summary>Prints the best configuration of a finished sweep as lora train arguments (quality.sh).</summary>
    SweepBest,
    /// <summary>Prints the fine-tuning quality table of quality.sh's run folders, and renders its bar chart.</summary>
    QualityReport,
    /// <summary>ML.NET's own TextClassification trainer beside ours on the same SST-2 sentences (each in a child process).</summary>
    MlnetAnchor,
    /// <summary>Scoring one model with TorchSharp (fp32, int8) and with ONNX Runtime on its exports (fp32, int8).</summary>
    Onnx,
    /// <summary>Training steps on a quantized base (QLoRA: --quantize nf4|fp4|int8|bf16|fp16|none, --double-quant): peak RSS and seconds per step.</summary>
    Qlora,
    /// <summary>Peak memory of many adapters on one base (LoraAdapterSet) against one model per adapter, and the cost of switching.</summary>
    AdapterSet,
}

/// <summary>Command-line options of the benchmark program (the same names as the PyTorch anchor's where they overlap).</summary>
public sealed record BenchmarkOptions
{
    /// <summary>Path of a Hugging Face config.json; the model is built from it with random weights.</summary>
    public string? Config { get; init; }
    /// <summary>What to measure.</summary>
    public BenchmarkMode Mode { get; init; } = BenchmarkMode.Lora;
    /// <summary>Examples per batch.</summary>
    public int Batch { get; init; } = 32;
    /// <summary>Tokens per example (synthetic batches).</summary>
    public int Seq { get; init; } = 128;
    /// <summary>Timed steps (training and inference each).</summary>
    public int Steps { get; init; } = 10;
    /// <summary>Untimed steps before timing (the anchor runs 2 training steps and 1 inference step).</summary>
    public int Warmup { get; init; } = 2;
    /// <summary>Intra-op threads (torch.set_num_threads); 0 leaves libtorch's default.</summary>
    public int Threads { get; init; } = 0;
    /// <summary>Inter-op threads (torch.set_num_interop_threads); 0 leaves libtorch's default.</summary>
    public int InteropThreads { get; init; } = 0;
    /// <summary>LoRA rank.</summary>
    public int Rank { get; init; } = 8;
    /// <summary>LoRA alpha.</summary>
    public double Alpha { get; init; } = 16;
    /// <summary>LoRA dropout.</summary>
    public double Dropout { get; init; } = 0.05;
    /// <summary>AdamW learning rate.</summary>
    public double LearningRate { get; init; } = 1e-4;
    /// <summary>AdamW weight decay (torch.optim.AdamW's default, which the anchor uses).</summary>
    public double WeightDecay { get; init; } = 0.01;
    /// <summary>Padding mode: gzipped IMDb CSV (label, rating, id, text).</summary>
    public string? Data { get; init; }
    /// <summary>Padding mode: the WordPiece vocab.txt.</summary>
    public string? Vocab { get; init; }
    /// <summary>Padding mode: how many reviews to run through.</summary>
    public int Samples { get; init; } = 512;
    /// <summary>Padding mode: truncation length.</summary>
    public int MaxLength { get; init; } = 256;
    /// <summary>Seed for weights and data.</summary>
    public int Seed { get; init; } = 0;
    /// <summary>precision-accuracy mode: the folder of reference fixtures (one sub-folder per family with cases.json).</summary>
    public string? Fixtures { get; init; }
    /// <summary>Report mode: the results file (JSON lines, see run-vs-pytorch.sh).</summary>
    public string? Input { get; init; }
    /// <summary>Report mode: where to write the PNG chart (optional).</summary>
    public string? Output { get; init; }
    /// <summary>Also time inference in bfloat16 (the merged model cast to bf16; AVX-512 BF16 CPUs multiply bf16 natively).</summary>
    public bool Bf16 { get; init; }
    /// <summary>Training with activation checkpointing (each layer recomputed in the backward pass).</summary>
    public bool Checkpointing { get; init; }
    /// <summary>OpenMP wait policy for libtorch's threads: passive (default here), active, or default (libgomp's own).</summary>
    public string OmpWait { get; init; } = "passive";
    /// <summary>quality-data: reviews per class in each IMDb set.</summary>
    public int PerClass { get; init; } = 2500;
    /// <summary>rating-data: training reviews (the first of a seeded shuffle of train.csv.gz).</summary>
    public int TrainRows { get; init; } = 2000;
    /// <summary>rating-data: test reviews (the first of a seeded shuffle of test.csv.gz).</summary>
    public int TestRows { get; init; } = 1000;
    /// <summary>quality-report: the chart's title.</summary>
    public string? Title { get; init; }
    /// <summary>mlnet-anchor: our side's Hugging Face model folder.</summary>
    public string? Model { get; init; }
    /// <summary>mlnet-anchor: which trainer this process runs (mlnet, lora, full); none runs all three as child processes.</summary>
    public string? Side { get; init; }
    /// <summary>qlora: how the base's linear weights are kept.</summary>
    public Models.Quantization.BaseQuantization Quantize { get; init; } = Models.Quantization.BaseQuantization.Nf4;
    /// <summary>qlora: quantize the 4-bit block scales again.</summary>
    public bool DoubleQuant { get; init; }
    /// <summary>Print one JSON line (otherwise a readable summary too).</summary>
    public bool Json { get; init; }

    /// <summary>Parses the command line; throws <see cref="ArgumentException"/> on an unknown or malformed option.</summary>
    public static BenchmarkOptions Parse(IReadOnlyList<string> args)
    {
        var o = new BenchmarkOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string name = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{name} needs a value");
            int Int() => int.Parse(Value(), CultureInfo.InvariantCulture);
            double Double() => double.Parse(Value(), CultureInfo.InvariantCulture);
            o = name switch
            {
                "--config" => o with { Config = Value() },
                "--mode" => o with { Mode = ParseMode(Value()) },
                "--batch" => o with { Batch = Int() },
                "--seq" => o with { Seq = Int() },
                "--steps" => o with { Steps = Int() },
                "--warmup" => o with { Warmup = Int() },
                "--threads" => o with { Threads = Int() },
                "--interop-threads" => o with { InteropThreads = Int() },
                "--rank" => o with { Rank = Int() },
                "--alpha" => o with { Alpha = Double() },
                "--dropout" => o with { Dropout = Double() },
                "--lr" => o with { LearningRate = Double() },
                "--weight-decay" => o with { WeightDecay = Double() },
                "--data" => o with { Data = Value() },
                "--vocab" => o with { Vocab = Value() },
                "--samples" => o with { Samples = Int() },
                "--max-length" => o with { MaxLength = Int() },
                "--seed" => o with { Seed = Int() },
                "--input" => o with { Input = Value() },
                "--fixtures" => o with { Fixtures = Value() },
                "--output" => o with { Output = Value() },
                "--json" => o with { Json = true },
                "--model" => o with { Model = Value() },
                "--side" => o with { Side = Value() is var side && side is "mlnet" or "lora" or "full" or "base" or "set" or "separate" ? side
                    : throw new ArgumentException("--side is mlnet, lora or full (mlnet-anchor), or base, set or separate (adapter-set)") },
                "--per-class" => o with { PerClass = Int() },
                "--train-rows" => o with { TrainRows = Int() },
                "--test-rows" => o with { TestRows = Int() },
                "--title" => o with { Title = Value() },
                "--bf16" => o with { Bf16 = true },
                "--checkpointing" => o with { Checkpointing = true },
                "--omp-wait" => o with { OmpWait = Value() },
                "--quantize" => o with { Quantize = Value() switch
                {
                    "none" => Models.Quantization.BaseQuantization.None,
                    "nf4" => Models.Quantization.BaseQuantization.Nf4,
                    "fp4" => Models.Quantization.BaseQuantization.Fp4,
                    "int8" => Models.Quantization.BaseQuantization.Int8,
                    "bf16" => Models.Quantization.BaseQuantization.BFloat16,
                    "fp16" => Models.Quantization.BaseQuantization.Float16,
                    var q => throw new ArgumentException($"--quantize '{q}' is not none, nf4, fp4, int8, bf16 or fp16"),
                } },
                "--double-quant" => o with { DoubleQuant = true },
                _ => throw new ArgumentException($"unknown option '{name}'"),
            };
        }
        if (o.Mode is not (BenchmarkMode.Matmul or BenchmarkMode.Report or BenchmarkMode.PrecisionAccuracy
                or BenchmarkMode.QualityData or BenchmarkMode.RatingData or BenchmarkMode.SweepBest or BenchmarkMode.QualityReport or BenchmarkMode.MlnetAnchor) && o.Config is null)
            throw new ArgumentException("--config <config.json> is required");
        if (o.Batch < 1 || o.Seq < 1 || o.Steps < 1 || o.Warmup < 0) throw new ArgumentException("--batch, --seq and --steps must be positive");
        return o;
    }

    static BenchmarkMode ParseMode(string s) => s switch
    {
        "lora" => BenchmarkMode.Lora,
        "full" => BenchmarkMode.Full,
        "infer-merged" => BenchmarkMode.InferMerged,
        "padding" => BenchmarkMode.Padding,
        "matmul" => BenchmarkMode.Matmul,
        "precision-accuracy" => BenchmarkMode.PrecisionAccuracy,
        "step-ratio" => BenchmarkMode.StepRatio,
        "report" => BenchmarkMode.Report,
        "quality-data" => BenchmarkMode.QualityData,
        "rating-data" => BenchmarkMode.RatingData,
        "sweep-best" => BenchmarkMode.SweepBest,
        "quality-report" => BenchmarkMode.QualityReport,
        "mlnet-anchor" => BenchmarkMode.MlnetAnchor,
        "onnx" => BenchmarkMode.Onnx,
        "qlora" => BenchmarkMode.Qlora,
        "adapter-set" => BenchmarkMode.AdapterSet,
        _ => throw new ArgumentException($"unknown mode '{s}' (lora, full, step-ratio, infer-merged, padding, matmul, precision-accuracy, report, quality-data, rating-data, sweep-best, quality-report, mlnet-anchor, onnx, qlora, adapter-set)"),
    };

    /// <summary>The usage text.</summary>
    public const string Usage =
        "usage: Microsoft.ML.LoRA.Benchmarks --config <config.json> --mode lora|full|step-ratio|infer-merged|padding|onnx [--batch 32] [--seq 128]\n" +
        "         [--steps 10] [--warmup 2] [--threads 2] [--interop-threads N] [--omp-wait passive|active|default] [--rank 8] [--alpha 16] [--bf16] [--json]\n" +
        "       padding: --data imdb/test.csv.gz --vocab vocab.txt [--samples 512] [--max-length 256]\n" +
        "       qlora: --config llama.json --quantize nf4|fp4|int8|bf16|fp16|none [--double-quant] --batch 1 --seq 128 --checkpointing --steps 2 --warmup 0\n" +
        "       Microsoft.ML.LoRA.Benchmarks --mode precision-accuracy --fixtures ../shared/fixtures [--config config.json]\n" +
        "       Microsoft.ML.LoRA.Benchmarks --mode matmul [--threads 2] [--steps 20] [--bf16]\n" +
        "       Microsoft.ML.LoRA.Benchmarks --mode report --input results.jsonl [--output chart.png]\n" +
        "       Microsoft.ML.LoRA.Benchmarks --mode quality-data --data ../shared/data/imdb --output DIR [--per-class 2500] [--seed 0]\n" +
        "       Microsoft.ML.LoRA.Benchmarks --mode rating-data --data ../shared/data/imdb --output DIR [--train-rows 2000] [--test-rows 1000] [--seed 0]\n" +
        "       Microsoft.ML.LoRA.Benchmarks --mode sweep-best --input SWEEP_DIR\n" +
        "       Microsoft.ML.LoRA.Benchmarks --mode quality-report --input RUNS_DIR [--output chart.png] [--title TEXT]\n" +
        "       Microsoft.ML.LoRA.Benchmarks --mode mlnet-anchor --data ../shared/data/sst2 --model MODEL_DIR [--samples 2000] [--batch 32] [--threads 2]\n" +
        "       Microsoft.ML.LoRA.Benchmarks --mode adapter-set --config config.json --vocab vocab.txt [--rank 8] [--batch 32] [--seq 128] [--steps 10]";
}
