namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>A finished sweep: every trial ranked best first, the best trial, and where the result files are.</summary>
public sealed class SweepResult
{
    /// <summary>The metric trials are ranked by.</summary>
    public required SweepMetric Metric { get; init; }

    /// <summary>
    /// Every trial of the sweep, best first: later rungs before earlier ones (successive halving), then successful
    /// trials by the metric (ties broken by log-loss, then by plan order), then failed trials.
    /// </summary>
    public required IReadOnlyList<TrialResult> Trials { get; init; }

    /// <summary>The best trial: the first successful one of <see cref="Trials"/>. Its model is copied to <see cref="BestModelPath"/>.</summary>
    public required TrialResult Best { get; init; }

    /// <summary>The sweep's folder.</summary>
    public required string OutputFolder { get; init; }

    /// <summary>results.csv: every trial, ranked, one row each.</summary>
    public required string ResultsCsvPath { get; init; }

    /// <summary>results.json: the same as <see cref="ResultsCsvPath"/> with the metric and strategy.</summary>
    public required string ResultsJsonPath { get; init; }

    /// <summary>best-model.zip: the best trial's fitted pipeline, saved with SaveWithLora (load it with LoadWithLora).</summary>
    public required string BestModelPath { get; init; }

    /// <summary>best.json: the best trial's configuration (as <see cref="LoraSweepParameters"/>) and metrics.</summary>
    public required string BestJsonPath { get; init; }

    /// <summary>trials.jsonl: the append-only journal of finished trials that makes the sweep resumable.</summary>
    public required string TrialsJournalPath { get; init; }

    /// <summary>Trials trained by this run.</summary>
    public int TrialsTrained => Trials.Count(t => !t.FromEarlierRun);

    /// <summary>Trials read back from an earlier, interrupted run.</summary>
    public int TrialsResumed => Trials.Count(t => t.FromEarlierRun);

    /// <summary>The ranked trials as a fixed-width text table, for consoles and logs.</summary>
    public string ToTable() => SweepTable.Format(Trials, Metric);
}
