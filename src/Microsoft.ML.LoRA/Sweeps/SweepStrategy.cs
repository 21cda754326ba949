using Microsoft.ML.LoRA.MLNet;

namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>
/// How a sweep chooses what to train: <see cref="Grid"/> (every configuration), <see cref="Random"/> (a seeded sample
/// of the grid) or <see cref="SuccessiveHalving"/> (many configurations with few epochs, the best with more).
/// </summary>
public abstract class SweepStrategy
{
    private protected SweepStrategy() { }

    /// <summary>Train every configuration of the search space once.</summary>
    public static GridStrategy Grid() => new();

    /// <summary>Train <paramref name="budget"/> distinct configurations drawn uniformly from the grid (seeded by <see cref="SweepOptions.Seed"/>).</summary>
    public static RandomStrategy Random(int budget) => new(budget);

    /// <summary>
    /// Successive halving: start <paramref name="configurations"/> configurations (null: the whole grid; otherwise a
    /// seeded random sample) with <paramref name="minEpochs"/> epochs, keep the best 1/<paramref name="eta"/> of each
    /// rung and train them again from scratch with <paramref name="eta"/> times the epochs, up to <paramref name="maxEpochs"/>.
    /// See <see cref="SuccessiveHalvingStrategy"/>.
    /// </summary>
    public static SuccessiveHalvingStrategy SuccessiveHalving(int eta = 3, int minEpochs = 1, int maxEpochs = 9, int? configurations = null) =>
        new(eta, minEpochs, maxEpochs, configurations);

    /// <summary>The configurations of the first rung, in the order they train.</summary>
    public abstract IReadOnlyList<TrialConfiguration> Candidates(LoraSearchSpace space, LoraTextClassifierOptions baseOptions, int seed);

    /// <summary>The rungs for <paramref name="candidates"/> first-rung configurations.</summary>
    public abstract IReadOnlyList<SweepRung> PlanRungs(int candidates);

    /// <summary>Throws <see cref="ArgumentException"/> when <paramref name="space"/> is invalid or does not suit this strategy.</summary>
    public virtual void Validate(LoraSearchSpace space)
    {
        ArgumentNullException.ThrowIfNull(space);
        space.Validate();
    }
}
