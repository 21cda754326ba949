using Microsoft.ML.LoRA.MLNet;

namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>
/// Trains <see cref="Budget"/> distinct configurations drawn uniformly from the grid with a generator seeded by
/// <see cref="SweepOptions.Seed"/> (<see cref="LoraSearchSpace.Sample"/>); the whole grid when the budget covers it.
/// </summary>
public sealed class RandomStrategy : SweepStrategy
{
    internal RandomStrategy(int budget)
    {
        if (budget < 1) throw new ArgumentOutOfRangeException(nameof(budget), $"The random search budget must be at least 1 trial (got {budget}).");
        Budget = budget;
    }

    /// <summary>Most trials to train.</summary>
    public int Budget { get; }

    /// <inheritdoc/>
    public override IReadOnlyList<TrialConfiguration> Candidates(LoraSearchSpace space, LoraTextClassifierOptions baseOptions, int seed)
    {
        Validate(space);
        return space.Sample(baseOptions, Budget, seed);
    }

    /// <inheritdoc/>
    public override IReadOnlyList<SweepRung> PlanRungs(int candidates) => new[] { new SweepRung(0, candidates, null) };

    /// <inheritdoc/>
    public override string ToString() => $"random(budget={Budget})";
}
