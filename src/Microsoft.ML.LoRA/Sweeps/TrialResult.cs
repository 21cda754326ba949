namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>The outcome of one trial: its configuration, validation metrics and saved model.</summary>
public sealed class TrialResult
{
    /// <summary>The configuration trained.</summary>
    public required TrialConfiguration Configuration { get; init; }

    /// <summary>The configuration's id (also the trial's folder name under trials/).</summary>
    public string Id => Configuration.Id;

    /// <summary>Position in the sweep's plan (0-based, across rungs); breaks exact ties in the ranking.</summary>
    public required int Sequence { get; init; }

    /// <summary>Rung index (0 for grid and random sweeps).</summary>
    public required int Rung { get; init; }

    /// <summary>Succeeded or failed.</summary>
    public required TrialStatus Status { get; init; }

    /// <summary>All validation metrics; null for a failed trial.</summary>
    public TrialMetrics? Metrics { get; init; }

    /// <summary>The value of the sweep's metric; NaN for a failed trial.</summary>
    public required double Objective { get; init; }

    /// <summary>Epochs trained (fewer than configured when early stopping was on).</summary>
    public int EpochsTrained { get; init; }

    /// <summary>The epoch whose weights the model kept (the last one unless the base options give a validation set).</summary>
    public int BestEpoch { get; init; }

    /// <summary>Time to train, evaluate and save the trial.</summary>
    public TimeSpan Duration { get; init; }

    /// <summary>Full path of the trial's model (saved with SaveWithLora); null for a failed trial.</summary>
    public string? ModelPath { get; init; }

    /// <summary>Why the trial failed; null when it succeeded.</summary>
    public string? Error { get; init; }

    /// <summary>When the trial finished (UTC).</summary>
    public DateTimeOffset FinishedAt { get; init; }

    /// <summary>True when this run read the trial back from an earlier run instead of training it.</summary>
    public bool FromEarlierRun { get; init; }

    /// <inheritdoc/>
    public override string ToString() => $"{Id}: {Status} {Objective:G4}";
}
