namespace Microsoft.ML.LoRA.Cli.Running;

/// <summary>
/// What a training run cost, as metrics.json records it: the method, the parameters that trained out of all, the wall
/// time of the fit (loading the base, tokenizing, training and per-epoch validation) and the process's peak resident
/// memory (Linux VmHWM; 0 where /proc is not available).
/// </summary>
internal sealed record TrainingFigures(
    string Method,
    long TrainableParameters,
    long TotalParameters,
    double TrainingSeconds,
    double PeakRssMiB);
