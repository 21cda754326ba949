namespace Microsoft.ML.LoRA.Training;

/// <summary>A progress report sent after each optimizer step.</summary>
public sealed record TrainingProgress(
    int Epoch,
    int Epochs,
    long Step,
    long TotalSteps,
    double Loss,
    double LearningRate,
    double SamplesPerSecond,
    TimeSpan Elapsed,
    TimeSpan? Remaining);

/// <summary>What one epoch ended with. Validation figures are null without a validation set.</summary>
public sealed record EpochSummary(
    int Epoch,
    double TrainLoss,
    double? ValidationLoss,
    double? ValidationAccuracy,
    TimeSpan Duration);

/// <summary>The whole training run: every epoch, the epoch whose weights the model ends with, and how it ended.</summary>
public sealed record TrainingHistory(
    IReadOnlyList<EpochSummary> Epochs,
    int BestEpoch,
    bool StoppedEarly,
    bool Cancelled);
