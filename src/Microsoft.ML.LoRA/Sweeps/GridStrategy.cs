using Microsoft.ML.LoRA.MLNet;

namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>Trains every configuration of the search space once, in the grid's order (<see cref="LoraSearchSpace.Expand"/>).</summary>
public sealed class GridStrategy : SweepStrategy
{
    internal GridStrategy() { }

    /// <inheritdoc/>
    public override IReadOnlyList<TrialConfiguration> Candidates(LoraSearchSpace space, LoraTextClassifierOptions baseOptions, int seed)
    {
        Validate(space);
        return space.Expand(baseOptions);
    }

    /// <inheritdoc/>
    public override IReadOnlyList<SweepRung> PlanRungs(int candidates) => new[] { new SweepRung(0, candidates, null) };

    /// <inheritdoc/>
    public override string ToString() => "grid";
}
