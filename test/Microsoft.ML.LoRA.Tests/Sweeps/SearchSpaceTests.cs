using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Sweeps;

namespace Microsoft.ML.LoRA.Tests.Sweeps;

/// <summary>Grid expansion of a search space, trial ids, and the options a configuration produces (pure logic, no training).</summary>
public class SearchSpaceTests
{
    static LoraTextClassifierOptions Base() => new() { ModelPath = "model", Epochs = 3, LearningRate = 5e-4, Lora = new LoraOptions { Rank = 8, Alpha = 16, Dropout = 0.05 } };

    static LoraSearchSpace IssueExample() => new()
    {
        Alphas = new double[] { 1, 4, 8, 16, 32, 64 },
        Ranks = new[] { 1, 2, 4, 8, 16, 32 },
        LoraQuery = SwitchChoice.On,
        LoraValue = SwitchChoice.On,
        LoraKey = SwitchChoice.Both,
        LoraProjection = SwitchChoice.Both,
        LoraMlp = SwitchChoice.Both,
        LoraHead = SwitchChoice.Both,
    };

    [Fact]
    public void Six_alphas_by_six_ranks_by_four_switches_on_both_is_576_distinct_configurations()
    {
        var space = IssueExample();

        var grid = space.Expand(Base());

        space.Count.Should().Be(576);
        grid.Should().HaveCount(576);
        grid.Select(c => c.Id).Should().OnlyHaveUniqueItems();
        grid.Select(c => (c.Rank, c.Alpha, c.Targets)).Should().OnlyHaveUniqueItems("ids are distinct because the configurations are");
        grid.Select(c => c.Rank).Distinct().Should().BeEquivalentTo(new[] { 1, 2, 4, 8, 16, 32 });
        grid.Select(c => c.Alpha).Distinct().Should().BeEquivalentTo(new double[] { 1, 4, 8, 16, 32, 64 });
        grid.GroupBy(c => (c.Rank, c.Alpha)).Should().AllSatisfy(g => g.Should().HaveCount(16, "each rank/alpha pair meets all 2^4 switch combinations"));
        grid.Count(c => c.Targets!.Value.Key).Should().Be(288);
        grid.Count(c => c.Targets!.Value.Head && c.Targets!.Value.Mlp).Should().Be(144);
    }

    [Fact]
    public void Fixed_on_and_off_switches_hold_in_every_configuration_and_in_its_options()
    {
        var space = IssueExample();
        space.LoraHead = SwitchChoice.Off;

        var grid = space.Expand(Base());

        grid.Should().HaveCount(288);
        grid.Should().AllSatisfy(c =>
        {
            c.Targets!.Value.Query.Should().BeTrue();
            c.Targets!.Value.Value.Should().BeTrue();
            c.Targets!.Value.Head.Should().BeFalse();
        });
        foreach (var c in grid.Take(40))
        {
            var lora = c.ToOptions(Base()).Lora;
            (lora.LoraQuery, lora.LoraKey, lora.LoraValue, lora.LoraProjection, lora.LoraMlp, lora.LoraHead)
                .Should().Be((true, c.Targets!.Value.Key, true, c.Targets!.Value.Projection, c.Targets!.Value.Mlp, false));
            lora.TargetModules.Should().BeEmpty("a trial adapts exactly its switches");
            (lora.Rank, lora.Alpha).Should().Be((c.Rank, c.Alpha));
        }
    }

    [Fact]
    public void Values_the_space_does_not_list_come_from_the_base_options()
    {
        var space = new LoraSearchSpace { LearningRates = new[] { 1e-3, 5e-3 }, LoraKey = SwitchChoice.Both };

        var grid = space.Expand(Base());

        grid.Should().HaveCount(4);
        grid.Should().AllSatisfy(c => (c.Rank, c.Alpha, c.Dropout, c.Epochs).Should().Be((8, 16.0, 0.05, 3)));
        grid.Select(c => c.Targets!.Value.Label).Should().Equal(new[] { "q+v+o+mlp", "q+k+v+o+mlp", "q+v+o+mlp", "q+k+v+o+mlp" },
            "the other switches take the base's default targets, every transformer-layer linear");
        grid.Select(c => c.Id).Should().Equal(
            "r8_a16_lr0.001_e3_d0.05_q+v+o+mlp", "r8_a16_lr0.001_e3_d0.05_q+k+v+o+mlp", "r8_a16_lr0.005_e3_d0.05_q+v+o+mlp", "r8_a16_lr0.005_e3_d0.05_q+k+v+o+mlp");
    }

    [Fact]
    public void Without_switches_trials_keep_the_base_targets_and_an_all_off_trial_adapts_nothing()
    {
        var baseOptions = Base();
        baseOptions.Lora.TargetModules = new[] { "query", "value", "key" };

        var inherited = new LoraSearchSpace { Ranks = new[] { 2 } }.Expand(baseOptions).Single();
        var allOff = new LoraSearchSpace
        {
            LoraQuery = SwitchChoice.Off, LoraKey = SwitchChoice.Off, LoraValue = SwitchChoice.Off, LoraProjection = SwitchChoice.Off, LoraMlp = SwitchChoice.Off,
        }.Expand(Base()).Single();

        inherited.Targets.Should().BeNull();
        inherited.Id.Should().Be("r2_a16_lr0.0005_e3_d0.05");
        inherited.ToOptions(baseOptions).Lora.TargetModules.Should().Equal("query", "value", "key");
        allOff.Id.Should().EndWith("_none");
        var off = allOff.ToOptions(Base()).Lora;
        off.TargetModules.Should().NotBeNull().And.BeEmpty("an empty list with no switch means no adapter, not the default targets");
        new[] { off.LoraQuery, off.LoraKey, off.LoraValue, off.LoraProjection, off.LoraMlp, off.LoraHead }.Should().AllBeEquivalentTo(false);
    }

    [Fact]
    public void Parameters_apply_to_a_copy_and_leave_the_base_options_alone()
    {
        var baseOptions = Base();
        var parameters = new LoraSweepParameters { Rank = 4, LearningRate = 1e-3, LoraMlp = true };

        var options = parameters.ToOptions(baseOptions);

        (options.Lora.Rank, options.LearningRate, options.Lora.Alpha, options.Epochs, options.ModelPath).Should().Be((4, 1e-3, 16.0, 3, "model"));
        (options.Lora.LoraQuery, options.Lora.LoraValue, options.Lora.LoraMlp, options.Lora.LoraKey, options.Lora.LoraHead).Should().Be((true, true, true, true, false),
            "unset switches take the base's effective targets (every transformer-layer linear, not the head)");
        options.Lora.Should().NotBeSameAs(baseOptions.Lora);
        (baseOptions.Lora.Rank, baseOptions.LearningRate, baseOptions.Lora.LoraMlp, baseOptions.Lora.TargetModules).Should().Be((8, 5e-4, false, (IList<string>?)null));
    }

    [Fact]
    public void Invalid_spaces_fail_with_messages_that_name_the_problem()
    {
        Action empty = () => new LoraSearchSpace().Validate();
        Action emptyList = () => new LoraSearchSpace { Ranks = new List<int>() }.Validate();
        Action repeated = () => new LoraSearchSpace { Alphas = new double[] { 8, 16, 8 } }.Validate();
        Action badDropout = () => new LoraSearchSpace { Dropouts = new[] { 0.1, 1.0 } }.Validate();
        Action badRank = () => new LoraSearchSpace { Ranks = new[] { 0, 4 } }.Validate();
        var named = Base();
        named.Lora.TargetModules = new[] { "query" };
        Action conflict = () => new LoraSearchSpace { LoraKey = SwitchChoice.Both }.Expand(named);
        Action epochsWithHalving = () => SweepStrategy.SuccessiveHalving().Validate(new LoraSearchSpace { Epochs = new[] { 1, 2 } });

        empty.Should().Throw<ArgumentException>().WithMessage("The search space is empty*");
        emptyList.Should().Throw<ArgumentException>().WithMessage("Ranks is empty*");
        repeated.Should().Throw<ArgumentException>().WithMessage("Alphas lists 8 more than once*");
        badDropout.Should().Throw<ArgumentException>().WithMessage("Dropouts*[0, 1)*1*");
        badRank.Should().Throw<ArgumentException>().WithMessage("Ranks*at least 1*0*");
        conflict.Should().Throw<ArgumentException>().WithMessage("*TargetModules = [query]*");
        epochsWithHalving.Should().Throw<ArgumentException>().WithMessage("*leave LoraSearchSpace.Epochs null*");
    }
}
