using System.CommandLine;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Models;

namespace Microsoft.ML.LoRA.Cli.Options;

// ML.NET has a namespace Microsoft.ML.Command, which would hide System.CommandLine.Command here.
using Command = System.CommandLine.Command;

/// <summary>
/// The training hyper-parameters shared by train and sweep: --epochs, --batch-size, --learning-rate, --max-length,
/// --warmup, --weight-decay, --max-grad-norm, --grad-accumulation, --patience, --threads, --precision, --gradient-checkpointing
/// and --length-bucketing. Defaults are the
/// library's (<see cref="LoraTextClassifierOptions"/>).
/// </summary>
internal sealed class TrainingOptionSet
{
    static readonly LoraTextClassifierOptions Defaults = new();

    public Option<int> Epochs { get; } = new("--epochs")
    {
        Description = "Passes over the training data", HelpName = "N",
        DefaultValueFactory = _ => Defaults.Epochs, CustomParser = ValueParsers.Int("--epochs", min: 1),
    };

    public Option<int> BatchSize { get; } = new("--batch-size")
    {
        Description = "Examples per training step", HelpName = "N",
        DefaultValueFactory = _ => Defaults.BatchSize, CustomParser = ValueParsers.Int("--batch-size", min: 1),
    };

    public Option<double> LearningRate { get; } = new("--learning-rate")
    {
        Description = "Peak AdamW learning rate (warm-up, then linear decay)", HelpName = "LR",
        DefaultValueFactory = _ => Defaults.LearningRate,
        CustomParser = ValueParsers.Double("--learning-rate", v => v > 0 && double.IsFinite(v), "a positive number"),
    };

    public Option<int?> MaxLength { get; } = new("--max-length")
    {
        Description = "Tokens per example including special tokens; longer text is truncated [default: min(256, the model's positions)]",
        HelpName = "N", CustomParser = ValueParsers.OptionalInt("--max-length", min: 2),
    };

    public Option<double> Warmup { get; } = new("--warmup")
    {
        Description = "Share of the steps spent warming the learning rate up, in [0, 1)", HelpName = "F",
        DefaultValueFactory = _ => Defaults.WarmupFraction,
        CustomParser = ValueParsers.Double("--warmup", v => v >= 0 && v < 1, "a number in [0, 1)"),
    };

    public Option<double> WeightDecay { get; } = new("--weight-decay")
    {
        Description = "AdamW weight decay (not on biases and normalisation weights)", HelpName = "W",
        DefaultValueFactory = _ => Defaults.WeightDecay,
        CustomParser = ValueParsers.Double("--weight-decay", v => v >= 0 && double.IsFinite(v), "a non-negative number"),
    };

    public Option<double> MaxGradNorm { get; } = new("--max-grad-norm")
    {
        Description = "Clip the gradient norm to this value; 0 turns clipping off", HelpName = "N",
        DefaultValueFactory = _ => Defaults.MaxGradientNorm,
        CustomParser = ValueParsers.Double("--max-grad-norm", v => v >= 0 && double.IsFinite(v), "a non-negative number"),
    };

    public Option<int> GradAccumulation { get; } = new("--grad-accumulation")
    {
        Description = "Batches whose gradients are summed per optimizer step", HelpName = "N",
        DefaultValueFactory = _ => Defaults.GradientAccumulationSteps, CustomParser = ValueParsers.Int("--grad-accumulation", min: 1),
    };

    public Option<int?> Patience { get; } = new("--patience")
    {
        Description = "Stop after this many epochs without a better validation accuracy (needs validation data)",
        HelpName = "N", CustomParser = ValueParsers.OptionalInt("--patience", min: 1),
    };

    public Option<int?> Threads { get; } = new("--threads")
    {
        Description = "Threads libtorch may use [default: all cores]", HelpName = "N",
        CustomParser = ValueParsers.OptionalInt("--threads", min: 1),
    };

    public Option<string> Precision { get; } = new Option<string>("--precision")
    {
        Description = "Number type of the matrix products, in training and in the saved model's scoring: fp32, bf16 " +
                      "(on CPUs with AVX-512 BF16 or AMX about 2x faster training and 2-3x faster scoring of base-size models, logits " +
                      "within 2% of their spread), auto (bf16 where the CPU has it), or int8 (training in fp32, the saved " +
                      "model scoring with int8 weights and activations: 1.2-1.6x faster on x86-64 for base-size models, a small accuracy cost)",
        HelpName = "fp32|bf16|auto|int8", DefaultValueFactory = _ => "fp32",
    }.AcceptOnlyFromAmong("fp32", "bf16", "auto", "int8");

    public Option<bool> LengthBucketing { get; } = new("--length-bucketing")
    {
        Description = "Group training examples of similar length into batches: less padding, faster on text of varied " +
                      "length, slightly less random batches; 'false' batches them in plain shuffled order",
        HelpName = "true|false", DefaultValueFactory = _ => Defaults.LengthBucketing,
    };

    public Option<bool> GradientCheckpointing { get; } = new("--gradient-checkpointing")
    {
        Description = "Recompute each layer in the backward pass instead of keeping its activations: much less " +
                      "training memory, about one extra forward pass of time, the same result",
    };

    /// <summary>The library's value for a --precision word.</summary>
    public static ComputePrecision ParsePrecision(string word) => word switch
    {
        "bf16" => ComputePrecision.BFloat16,
        "auto" => ComputePrecision.Auto,
        "int8" => ComputePrecision.Int8,
        _ => ComputePrecision.Float32,
    };

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { Epochs, BatchSize, LearningRate, MaxLength, Warmup, WeightDecay, MaxGradNorm, GradAccumulation, Patience, Threads, Precision, GradientCheckpointing, LengthBucketing })
            command.Options.Add(option);
    }

    /// <summary>Copies the parsed values onto <paramref name="options"/>.</summary>
    public void ApplyTo(ParseResult parseResult, LoraTextClassifierOptions options)
    {
        options.Epochs = parseResult.GetValue(Epochs);
        options.BatchSize = parseResult.GetValue(BatchSize);
        options.LearningRate = parseResult.GetValue(LearningRate);
        options.MaxSequenceLength = parseResult.GetValue(MaxLength);
        options.WarmupFraction = parseResult.GetValue(Warmup);
        options.WeightDecay = parseResult.GetValue(WeightDecay);
        options.MaxGradientNorm = parseResult.GetValue(MaxGradNorm);
        options.GradientAccumulationSteps = parseResult.GetValue(GradAccumulation);
        options.EarlyStoppingPatience = parseResult.GetValue(Patience);
        options.Threads = parseResult.GetValue(Threads);
        options.Precision = ParsePrecision(parseResult.GetValue(Precision)!);
        options.GradientCheckpointing = parseResult.GetValue(GradientCheckpointing);
        options.LengthBucketing = parseResult.GetValue(LengthBucketing);
    }
}
