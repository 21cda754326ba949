using Microsoft.ML.LoRA.MLNet;

namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>
/// Successive halving: stop weak configurations early and spend the epochs on the strong ones.
/// <list type="number">
/// <item>Rung 0 trains every candidate (the whole grid, or <see cref="Configurations"/> of them sampled with the
/// sweep's seed) for <see cref="MinEpochs"/> epochs.</item>
/// <item>Each rung ranks its trials by the sweep's metric. The best floor(n / <see cref="Eta"/>) (at least 1) of
/// them survive into the next rung, which trains them for <see cref="Eta"/> times the epochs, capped at
/// <see cref="MaxEpochs"/>. Failed trials never survive.</item>
/// <item>Survivors retrain from scratch: every trial is a fresh fit from the base checkpoint with <c>Epochs</c> set to
/// its rung's epochs, so its learning-rate schedule (warm-up, then linear decay to zero) spans exactly those epochs and
/// the result equals a standalone run of that length. Nothing is carried over from the earlier rung but the ranking.</item>
/// <item>The sweep ends after the rung trained for <see cref="MaxEpochs"/>. A rung left with a single configuration
/// trains it for <see cref="MaxEpochs"/> at once and is the last (intermediate rungs would not change the choice).</item>
/// </list>
/// Example: 27 candidates, eta 3, epochs 1..9: rungs of 27 x 1, 9 x 3 and 3 x 9 epochs = 81 epochs, against 243 for the
/// grid at 9 epochs. The search space must not list <see cref="LoraSearchSpace.Epochs"/>.
/// </summary>
public sealed class SuccessiveHalvingStrategy : SweepStrategy
{
    internal SuccessiveHalvingStrategy(int eta, int minEpochs, int maxEpochs, int? configurations)
    {
        if (eta < 2) throw new ArgumentOutOfRangeException(nameof(eta), $"Successive halving's eta must be at least 2 (got {eta}).");
        if (minEpochs < 1) throw new ArgumentOutOfRangeException(nameof(minEpochs), $"minEpochs must be at least 1 (got {minEpochs}).");
        if (maxEpochs < minEpochs) throw new ArgumentOutOfRangeException(nameof(maxEpochs), $"maxEpochs ({maxEpochs}) must be at least minEpochs ({minEpochs}).");
        if (configurations is < 1) throw new ArgumentOutOfRangeException(nameof(configurations), $"configurations must be at least 1 when set (got {configurations}).");
        Eta = eta;
        MinEpochs = minEpochs;
        MaxEpochs = maxEpochs;
        Configurations = configurations;
    }

    /// <summary>Keep 1/eta of each rung; survivors get eta times the epochs.</summary>
    public int Eta { get; }
    /// <summary>Epochs of the first rung.</summary>
    public int MinEpochs { get; }
    /// <summary>Epochs of the last rung.</summary>
    public int MaxEpochs { get; }
    /// <summary>Configurations in the first rung, sampled from the grid with the sweep's seed; null: the whole grid.</summary>
    public int? Configurations { get; }

    /// <inheritdoc/>
    public override void Validate(LoraSearchSpace space)
    {
        base.Validate(space);
        if (space.Epochs is not null)
            throw new ArgumentException("Successive halving sets each rung's epochs itself (MinEpochs .. MaxEpochs); leave LoraSearchSpace.Epochs null.", nameof(space));
    }

    /// <inheritdoc/>
    public override IReadOnlyList<TrialConfiguration> Candidates(LoraSearchSpace space, LoraTextClassifierOptions baseOptions, int seed)
    {
        Validate(space);
        var candidates = Configurations is int n ? space.Sample(baseOptions, n, seed) : space.Expand(baseOptions);
        int firstEpochs = PlanRungs(candidates.Count)[0].Epochs!.Value;
        return candidates.Select(c => c.WithEpochs(firstEpochs)).ToList();
    }

    /// <inheritdoc/>
    public override IReadOnlyList<SweepRung> PlanRungs(int candidates)
    {
        if (candidates < 1) throw new ArgumentOutOfRangeException(nameof(candidates), $"Successive halving needs at least one configuration (got {candidates}).");
        int trials = candidates;
        int epochs = trials == 1 ? MaxEpochs : MinEpochs;
        var rungs = new List<SweepRung> { new(0, trials, epochs) };
        while (trials > 1 && epochs < MaxEpochs)
        {
            trials = Math.Max(1, trials / Eta);
            epochs = trials == 1 ? MaxEpochs : (int)Math.Min((long)epochs * Eta, MaxEpochs);
            rungs.Add(new SweepRung(rungs.Count, trials, epochs));
        }
        return rungs;
    }

    /// <summary>Epochs the whole plan trains: the sum over rungs of trials x epochs.</summary>
    public static long TotalEpochs(IEnumerable<SweepRung> rungs) => rungs.Sum(r => (long)r.Trials * (r.Epochs ?? 0));

    /// <inheritdoc/>
    public override string ToString() => $"successive-halving(eta={Eta}, epochs={MinEpochs}..{MaxEpochs}, configurations={(Configurations?.ToString() ?? "grid")})";
}
