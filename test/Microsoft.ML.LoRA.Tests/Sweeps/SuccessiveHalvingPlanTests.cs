using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Sweeps;

namespace Microsoft.ML.LoRA.Tests.Sweeps;

/// <summary>The rung arithmetic of successive halving (pure logic).</summary>
public class SuccessiveHalvingPlanTests
{
    static (int Trials, int Epochs)[] Plan(int candidates, int eta, int min, int max) =>
        SweepStrategy.SuccessiveHalving(eta, min, max).PlanRungs(candidates).Select(r => (r.Trials, r.Epochs!.Value)).ToArray();

    [Fact]
    public void Each_rung_keeps_the_best_one_over_eta_with_eta_times_the_epochs()
    {
        Plan(27, eta: 3, min: 1, max: 9).Should().Equal((27, 1), (9, 3), (3, 9));
        Plan(4, eta: 2, min: 1, max: 4).Should().Equal((4, 1), (2, 2), (1, 4));
        Plan(81, eta: 3, min: 1, max: 27).Should().Equal((81, 1), (27, 3), (9, 9), (3, 27));
        Plan(20, eta: 3, min: 2, max: 10).Should().Equal((20, 2), (6, 6), (2, 10));   // epochs capped at the maximum
    }

    [Fact]
    public void A_rung_left_with_one_configuration_trains_it_for_the_maximum_and_ends_the_sweep()
    {
        Plan(10, eta: 3, min: 1, max: 9).Should().Equal((10, 1), (3, 3), (1, 9));
        Plan(2, eta: 3, min: 1, max: 27).Should().Equal((2, 1), (1, 27));
        Plan(1, eta: 3, min: 1, max: 9).Should().Equal((1, 9));
        Plan(5, eta: 2, min: 3, max: 3).Should().Equal((5, 3));
    }

    [Fact]
    public void The_plan_trains_fewer_epochs_than_the_grid_at_full_length()
    {
        foreach (var (n, eta, max) in new[] { (27, 3, 9), (4, 2, 4), (64, 4, 16), (10, 3, 9) })
        {
            var rungs = SweepStrategy.SuccessiveHalving(eta, 1, max).PlanRungs(n);
            SuccessiveHalvingStrategy.TotalEpochs(rungs).Should().BeLessThan((long)n * max);
        }
        SuccessiveHalvingStrategy.TotalEpochs(SweepStrategy.SuccessiveHalving(3, 1, 9).PlanRungs(27)).Should().Be(81);
    }

    [Fact]
    public void First_rung_candidates_train_the_minimum_epochs_and_may_be_a_seeded_sample()
    {
        var baseOptions = new LoraTextClassifierOptions { ModelPath = "model", Lora = new LoraOptions() };
        var space = new LoraSearchSpace { Ranks = new[] { 2, 4, 8 }, LearningRates = new[] { 1e-3, 5e-3, 1e-2 } };

        var all = SweepStrategy.SuccessiveHalving(eta: 3, minEpochs: 2, maxEpochs: 6).Candidates(space, baseOptions, seed: 0);
        var sampled = SweepStrategy.SuccessiveHalving(eta: 3, minEpochs: 2, maxEpochs: 6, configurations: 5).Candidates(space, baseOptions, seed: 0);

        all.Should().HaveCount(9).And.AllSatisfy(c => c.Epochs.Should().Be(2));
        sampled.Should().HaveCount(5).And.AllSatisfy(c => c.Epochs.Should().Be(2));
        sampled.Select(c => c.Id).Should().OnlyHaveUniqueItems().And.BeSubsetOf(all.Select(c => c.Id));
    }

    [Fact]
    public void Invalid_settings_are_refused()
    {
        ((Action)(() => SweepStrategy.SuccessiveHalving(eta: 1))).Should().Throw<ArgumentOutOfRangeException>().WithMessage("*eta must be at least 2*");
        ((Action)(() => SweepStrategy.SuccessiveHalving(minEpochs: 4, maxEpochs: 2))).Should().Throw<ArgumentOutOfRangeException>().WithMessage("*maxEpochs (2) must be at least minEpochs (4)*");
        ((Action)(() => SweepStrategy.SuccessiveHalving(configurations: 0))).Should().Throw<ArgumentOutOfRangeException>();
    }
}
