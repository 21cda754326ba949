using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Sweeps;

namespace Microsoft.ML.LoRA.Tests.Sweeps;

/// <summary>Random search: seeded, reproducible, distinct, within budget and within the grid (pure logic).</summary>
public class RandomSamplingTests
{
    static readonly LoraTextClassifierOptions Base = new() { ModelPath = "model", Lora = new LoraOptions() };

    static LoraSearchSpace Space() => new()
    {
        Ranks = new[] { 1, 2, 4, 8, 16, 32 },
        Alphas = new double[] { 1, 4, 8, 16, 32, 64 },
        LearningRates = new[] { 1e-4, 5e-4, 1e-3 },
        LoraMlp = SwitchChoice.Both,
    };

    [Fact]
    public void The_same_seed_gives_the_same_distinct_configurations_within_the_budget()
    {
        var strategy = SweepStrategy.Random(budget: 25);
        var grid = Space().Expand(Base).Select(c => c.Id).ToHashSet();

        var first = strategy.Candidates(Space(), Base, seed: 7);
        var again = strategy.Candidates(Space(), Base, seed: 7);
        var other = strategy.Candidates(Space(), Base, seed: 8);

        first.Should().HaveCount(25);
        first.Select(c => c.Id).Should().OnlyHaveUniqueItems();
        first.Select(c => c.Id).Should().BeSubsetOf(grid);
        again.Select(c => c.Id).Should().Equal(first.Select(c => c.Id), "a seeded sample is reproducible, order included");
        other.Select(c => c.Id).Should().NotEqual(first.Select(c => c.Id));
        strategy.PlanRungs(first.Count).Should().Equal(new SweepRung(0, 25, null));
    }

    [Fact]
    public void A_budget_larger_than_the_grid_takes_the_whole_grid_once()
    {
        var small = new LoraSearchSpace { Ranks = new[] { 2, 4 }, LoraKey = SwitchChoice.Both };

        var sample = SweepStrategy.Random(budget: 100).Candidates(small, Base, seed: 1);

        sample.Select(c => c.Id).Should().BeEquivalentTo(small.Expand(Base).Select(c => c.Id));
        var invalid = () => SweepStrategy.Random(budget: 0);
        invalid.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*at least 1*");
    }

    [Fact]
    public void Samples_spread_over_the_grid()
    {
        var sample = SweepStrategy.Random(budget: 108).Candidates(Space(), Base, seed: 3);   // half of the 216-point grid

        sample.Select(c => c.Rank).Distinct().Should().HaveCount(6);
        sample.Select(c => c.Alpha).Distinct().Should().HaveCount(6);
        sample.Count(c => c.Targets!.Value.Mlp).Should().BeInRange(34, 74, "about half the points have the MLP switch on");
        sample.Take(20).Select(c => c.Id).Should().NotEqual(Space().Expand(Base).Take(20).Select(c => c.Id), "not the grid order");
    }
}
