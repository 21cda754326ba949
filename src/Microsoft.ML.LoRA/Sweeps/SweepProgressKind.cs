namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>What a <see cref="SweepProgress"/> report is about.</summary>
public enum SweepProgressKind
{
    /// <summary>The trial had finished in an earlier run of this sweep; its result is read back, not retrained.</summary>
    TrialSkipped,
    /// <summary>The trial starts training.</summary>
    TrialStarted,
    /// <summary>One optimizer step of the running trial (<see cref="SweepProgress.Training"/> is set).</summary>
    TrainingStep,
    /// <summary>The trial finished, was evaluated and is saved (model.zip and a line in trials.jsonl).</summary>
    TrialFinished,
    /// <summary>The trial's training diverged (NaN loss); it is recorded as failed and the sweep goes on.</summary>
    TrialFailed,
}
