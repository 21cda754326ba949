using Microsoft.ML.LoRA.Diagnostics;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Models;

/// <summary>Our four families reproduce the reference logits of ../shared/fixtures, with and without their PEFT adapters.</summary>
public class FixtureParityTests
{
    public static IEnumerable<object[]> Families => SharedData.Families.Select(f => new object[] { f });

    [Theory]
    [MemberData(nameof(Families))]
    public void Base_model_logits_match_the_reference(string family)
    {
        var cases = LogitsCases.Load(Path.Combine(SharedData.Fixture(family), "cases.json"));
        using var model = PretrainedModel.Load(SharedData.Fixture(family));

        var logits = cases.Run(model);

        LogitsCases.MaxAbsDifference(logits, cases.Logits!).Should().BeLessThan(cases.Tolerance);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Logits_with_the_peft_adapter_match_the_reference(string family)
    {
        var cases = LogitsCases.Load(Path.Combine(SharedData.Fixture(family), "cases.json"));
        using var model = PretrainedModel.Load(SharedData.Fixture(family));

        var info = PeftAdapter.Load(model, Path.Combine(SharedData.Fixture(family), "adapter"));
        var logits = cases.Run(model);

        info.AdaptedModules.Should().NotBeEmpty();
        LogitsCases.MaxAbsDifference(logits, cases.LogitsWithAdapter!).Should().BeLessThan(cases.Tolerance);
        LogitsCases.MaxAbsDifference(logits, cases.Logits!).Should().BeGreaterThan(cases.Tolerance, "the adapter changes the output");
    }
}
