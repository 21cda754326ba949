using Microsoft.ML.LoRA.Cli.Options;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Models;

namespace Microsoft.ML.LoRA.Cli.Running;

/// <summary>options.json: the command line and every setting a run used, so it can be reproduced.</summary>
internal sealed record RunSettings(
    IReadOnlyList<string> CommandLine,
    string Task,
    string Model,
    string Data,
    string? Validation,
    double? ValidationFraction,
    int? MaxRows,
    string TextColumn,
    string? TextPairColumn,
    string LabelColumn,
    FineTuning Method,
    string? InitialAdapter,
    LoraOptions Lora,
    int Epochs,
    int BatchSize,
    double LearningRate,
    int? MaxSequenceLength,
    double WarmupFraction,
    double WeightDecay,
    double MaxGradientNorm,
    int GradientAccumulationSteps,
    int? EarlyStoppingPatience,
    int Seed,
    int? Threads,
    ComputePrecision Precision,
    bool GradientCheckpointing,
    bool LengthBucketing,
    string Library)
{
    /// <summary>The settings of a run; <paramref name="regression"/> for <c>--task regression</c>.</summary>
    public static RunSettings Describe(IReadOnlyList<string> commandLine, DataSelection data, int? maxRows, LoraTextClassifierOptions o, bool regression) => new(
        commandLine, regression ? "regression" : "classification", o.ModelPath, Path.GetFullPath(data.DataPath), data.ValidationPath is null ? null : Path.GetFullPath(data.ValidationPath),
        data.ValidationFraction, maxRows, data.FileOptions.TextColumn ?? "(auto)", data.FileOptions.TextPairColumn, data.FileOptions.LabelColumn ?? "(auto)",
        o.FineTuning, o.InitialAdapterPath is null ? null : Path.GetFullPath(o.InitialAdapterPath), o.Lora, o.Epochs, o.BatchSize, o.LearningRate, o.MaxSequenceLength, o.WarmupFraction, o.WeightDecay, o.MaxGradientNorm,
        o.GradientAccumulationSteps, o.EarlyStoppingPatience, o.Seed, o.Threads, o.Precision, o.GradientCheckpointing, o.LengthBucketing,
        typeof(LoraTextClassifierOptions).Assembly.GetName().Version?.ToString() ?? "");
}
