using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Diagnostics;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tests.Inference;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Lora;

/// <summary>
/// An adapter on the classification head (LoraHead) is written as PEFT's sequence-classification task keeps a head:
/// whole, in modules_to_save, with the update folded into its weight, and no lora_A / lora_B under it (PEFT would load
/// such factors into the module it replaces by its saved copy, and score without them). Loaded back, here or by
/// PeftModel.from_pretrained, the adapter scores as the model that wrote it.
/// </summary>
public class PeftHeadAdapterTests
{
    [Theory]
    [InlineData("bert", "classifier")]
    [InlineData("gpt2", "score")]
    public void An_adapted_head_is_written_folded_into_a_saved_module(string family, string head)
    {
        var fixture = SharedData.Fixture(family);
        var cases = LogitsCases.Load(Path.Combine(fixture, "cases.json"));
        var options = new LoraOptions { LoraQuery = true, LoraHead = true, Dropout = 0 };
        using var dir = new TempDir();
        float[][] written;
        using (var model = PretrainedModel.Load(fixture))
        {
            LoraInjector.Apply(model, options).AdaptedModules.Should().Contain(head);
            RandomAdapters.Perturb(model, seed: 3);
            written = cases.Run(model);
            PeftAdapter.Save(model, dir.Path, options);
        }

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, PeftAdapter.ConfigFile)))!;
        config["modules_to_save"]!.AsArray().Select(n => n!.GetValue<string>()).Should().Contain(head);
        config["target_modules"]!.AsArray().Select(n => n!.GetValue<string>()).Should().NotContain(head);
        var keys = SafeTensorsFile.Open(Path.Combine(dir.Path, PeftAdapter.WeightsFile)).Entries.Select(e => e.Name).ToList();
        keys.Should().Contain($"base_model.model.{head}.weight").And.NotContain(k => k.StartsWith($"base_model.model.{head}.lora_", StringComparison.Ordinal));
        keys.Should().Contain(k => k.Contains(".lora_A.", StringComparison.Ordinal), "the other adapters stay factored");

        using var reloaded = PretrainedModel.Load(fixture);
        PeftAdapter.Load(reloaded, dir.Path);
        LogitsCases.MaxAbsDifference(cases.Run(reloaded), written).Should().BeLessThan(1e-5);
        LogitsCases.MaxAbsDifference(written, cases.Logits!).Should().BeGreaterThan(1e-3, "the adapters change the output");
    }
}
