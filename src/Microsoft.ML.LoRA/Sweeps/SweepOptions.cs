namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>What a sweep searches, how, by which metric, and where it keeps its files.</summary>
public sealed class SweepOptions
{
    /// <summary>
    /// Folder for the sweep's files (created if missing). Running a sweep again on the same folder resumes it: finished
    /// trials are read back, not retrained. Required.
    /// </summary>
    public string OutputFolder { get; set; } = "";

    /// <summary>The values to try.</summary>
    public LoraSearchSpace SearchSpace { get; set; } = new();

    /// <summary>How to choose trials. Default: the whole grid.</summary>
    public SweepStrategy Strategy { get; set; } = SweepStrategy.Grid();

    /// <summary>The validation metric trials are ranked by. Default accuracy.</summary>
    public SweepMetric Metric { get; set; } = SweepMetric.Accuracy;

    /// <summary>
    /// Seeds the choice of configurations (random search, successive halving with a configuration count). Training's
    /// own seed is the base options' <c>Seed</c>. Default 0.
    /// </summary>
    public int Seed { get; set; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first option that is missing or invalid.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(OutputFolder)) throw new ArgumentException("OutputFolder is required: the folder the sweep writes its trials and results to.", nameof(OutputFolder));
        if (SearchSpace is null) throw new ArgumentException("SearchSpace is required.", nameof(SearchSpace));
        if (Strategy is null) throw new ArgumentException("Strategy is required.", nameof(Strategy));
        if (!Enum.IsDefined(Metric)) throw new ArgumentException($"Metric {(int)Metric} is not a SweepMetric.", nameof(Metric));
        Strategy.Validate(SearchSpace);
    }
}
