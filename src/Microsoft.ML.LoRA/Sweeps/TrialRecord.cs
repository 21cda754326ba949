namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>
/// One finished trial as stored in trials.jsonl (one compact line each) and in results.json. Paths are relative to the
/// sweep folder. <see cref="Place"/> is only set in results.json.
/// </summary>
internal sealed class TrialRecord
{
    public int? Place { get; set; }
    public string Id { get; set; } = "";
    public int Rung { get; set; }
    public int Sequence { get; set; }
    public TrialStatus Status { get; set; }
    public string? Metric { get; set; }
    public double? Objective { get; set; }
    public TrialMetrics? Metrics { get; set; }
    public LoraSweepParameters? Configuration { get; set; }
    public int EpochsTrained { get; set; }
    public int BestEpoch { get; set; }
    public double Seconds { get; set; }
    public string? Model { get; set; }
    public string? Error { get; set; }
    public DateTimeOffset FinishedAt { get; set; }

    public static TrialRecord From(TrialResult result, SweepMetric metric, SweepFolder folder, int? place = null) => new()
    {
        Place = place,
        Id = result.Id,
        Rung = result.Rung,
        Sequence = result.Sequence,
        Status = result.Status,
        Metric = metric.ToString(),
        Objective = double.IsNaN(result.Objective) ? null : result.Objective,
        Metrics = result.Metrics,
        Configuration = result.Configuration.ToParameters(),
        EpochsTrained = result.EpochsTrained,
        BestEpoch = result.BestEpoch,
        Seconds = Math.Round(result.Duration.TotalSeconds, 3),
        Model = result.ModelPath is null ? null : folder.Relative(result.ModelPath),
        Error = result.Error,
        FinishedAt = result.FinishedAt,
    };

    /// <summary>
    /// The result of this record for <paramref name="configuration"/> at its place in the current plan; the objective is
    /// recomputed from the stored metrics for <paramref name="metric"/>.
    /// </summary>
    public TrialResult ToResult(TrialConfiguration configuration, int sequence, int rung, SweepMetric metric, SweepFolder folder) => new()
    {
        Configuration = configuration,
        Sequence = sequence,
        Rung = rung,
        Status = Status,
        Metrics = Metrics,
        Objective = Status == TrialStatus.Succeeded && Metrics is not null ? Metrics.Get(metric) : double.NaN,
        EpochsTrained = EpochsTrained,
        BestEpoch = BestEpoch,
        Duration = TimeSpan.FromSeconds(Seconds),
        ModelPath = Model is null ? null : folder.Full(Model),
        Error = Error,
        FinishedAt = FinishedAt,
        FromEarlierRun = true,
    };
}
