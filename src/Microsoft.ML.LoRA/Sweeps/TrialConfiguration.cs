using System.Globalization;
using Microsoft.ML.LoRA.MLNet;

namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>
/// One point of a search space with every swept value resolved. Its <see cref="Id"/> is stable and readable, for
/// example <c>r8_a16_lr0.0005_e3_d0.05_q+v</c>, and names the trial's folder; a sweep that resumes recognises finished
/// trials by it. Two configurations are equal when their ids are.
/// </summary>
public sealed class TrialConfiguration : IEquatable<TrialConfiguration>
{
    /// <summary>Creates a configuration; <paramref name="targets"/> null keeps the base options' targets.</summary>
    public TrialConfiguration(int rank, double alpha, double dropout, double learningRate, int epochs, LoraTargetSwitches? targets)
    {
        Rank = rank;
        Alpha = alpha;
        Dropout = dropout;
        LearningRate = learningRate;
        Epochs = epochs;
        Targets = targets;
        Id = $"r{rank.ToString(CultureInfo.InvariantCulture)}_a{Format(alpha)}_lr{Format(learningRate)}_e{epochs.ToString(CultureInfo.InvariantCulture)}_d{Format(dropout)}"
            + (targets is { } t ? "_" + t.Label : "");
    }

    /// <summary>LoRA rank.</summary>
    public int Rank { get; }
    /// <summary>LoRA alpha.</summary>
    public double Alpha { get; }
    /// <summary>LoRA dropout.</summary>
    public double Dropout { get; }
    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; }
    /// <summary>Epochs.</summary>
    public int Epochs { get; }
    /// <summary>The switches this trial adapts exactly; null when the search space leaves the targets to the base options.</summary>
    public LoraTargetSwitches? Targets { get; }

    /// <summary>
    /// Stable id: <c>r{rank}_a{alpha}_lr{learning rate}_e{epochs}_d{dropout}</c>, then <c>_{targets}</c> when the targets
    /// are swept (q, k, v, o, mlp, head joined with '+', or "none"). Numbers use the invariant culture's shortest
    /// round-trip form. Safe as a file name on Linux, Windows and macOS.
    /// </summary>
    public string Id { get; }

    /// <summary>The same configuration trained for <paramref name="epochs"/> epochs (successive halving's rungs).</summary>
    public TrialConfiguration WithEpochs(int epochs) => new(Rank, Alpha, Dropout, LearningRate, epochs, Targets);

    /// <summary>These values as a parameter object (switches null when the targets are the base options').</summary>
    public LoraSweepParameters ToParameters() => new()
    {
        Rank = Rank, Alpha = Alpha, Dropout = Dropout, LearningRate = LearningRate, Epochs = Epochs,
        LoraQuery = Targets?.Query, LoraKey = Targets?.Key, LoraValue = Targets?.Value,
        LoraProjection = Targets?.Projection, LoraMlp = Targets?.Mlp, LoraHead = Targets?.Head,
    };

    /// <summary>The options of this trial: a copy of <paramref name="baseOptions"/> with these values (see <see cref="LoraSweepParameters.ToOptions"/>).</summary>
    public LoraTextClassifierOptions ToOptions(LoraTextClassifierOptions baseOptions) => ToParameters().ToOptions(baseOptions);

    /// <inheritdoc/>
    public bool Equals(TrialConfiguration? other) => other is not null && other.Id == Id;
    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as TrialConfiguration);
    /// <inheritdoc/>
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Id);
    /// <inheritdoc/>
    public override string ToString() => Id;

    internal static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
