using Microsoft.ML.LoRA.Training;

namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>
/// A report from a running sweep. Reports are sent on the sweep's thread, in order; a <see cref="SweepProgressKind.TrialFinished"/>
/// report comes after the trial is durably saved, so cancelling the sweep from it keeps that trial.
/// </summary>
/// <param name="Kind">What happened.</param>
/// <param name="Trial">The trial's configuration.</param>
/// <param name="Rung">Rung index (0 for grid and random sweeps).</param>
/// <param name="Rungs">Number of rungs planned.</param>
/// <param name="TrialInRung">1-based position of the trial in its rung.</param>
/// <param name="TrialsInRung">Trials in this rung.</param>
/// <param name="Result">The trial's result, for TrialSkipped, TrialFinished and TrialFailed.</param>
/// <param name="Training">The training step, for TrainingStep.</param>
/// <param name="Best">The best trial so far (the top of the latest rung), if any.</param>
public sealed record SweepProgress(
    SweepProgressKind Kind,
    TrialConfiguration Trial,
    int Rung,
    int Rungs,
    int TrialInRung,
    int TrialsInRung,
    TrialResult? Result = null,
    TrainingProgress? Training = null,
    TrialResult? Best = null);
