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
    TimeSpan? Remaining)
{
    /// <summary>The report after <paramref name="step"/> of <paramref name="totalSteps"/>, with the rate and the time left derived from the elapsed time.</summary>
    public static TrainingProgress After(int epoch, int epochs, long step, long totalSteps, double loss, double learningRate, long samplesSeen, TimeSpan elapsed)
    {
        double perSecond = elapsed.TotalSeconds > 0 ? samplesSeen / elapsed.TotalSeconds : 0;
        TimeSpan? remaining = step > 0 ? TimeSpan.FromSeconds(elapsed.TotalSeconds / step * (totalSteps - step)) : null;
        return new TrainingProgress(epoch, epochs, step, totalSteps, loss, learningRate, perSecond, elapsed, remaining);
    }
}

/// <summary>What one epoch ended with. Validation figures are null without a validation set.</summary>
public sealed record EpochSummary(
    int Epoch,
    double TrainLoss,
    double? ValidationLoss,
    double? ValidationAccuracy,
    TimeSpan Duration);

/// <summary>
/// The whole training run: every epoch, the epoch whose weights the model ends with, how it ended, and the training
/// loss of every optimizer step (the mean over the step's examples; null in files written before it was recorded)
/// with the number of steps an epoch has.
/// </summary>
public sealed record TrainingHistory(
    IReadOnlyList<EpochSummary> Epochs,
    int BestEpoch,
    bool StoppedEarly,
    bool Cancelled,
    IReadOnlyList<float>? StepLosses = null,
    long StepsPerEpoch = 0);
