using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tests.Support;
using TorchSharp;

namespace Microsoft.ML.LoRA.Tests.Lora;

/// <summary>PEFT's rank_pattern, alpha_pattern and layers_pattern: per-module ranks and alphas, and which layer list is indexed.</summary>
public class ModulePatternTests
{
    static SequenceClassifier Fixture(string family) => PretrainedModel.Load(SharedData.Fixture(family), numLabels: 2);

    [Theory]
    [InlineData("value", "bert.encoder.layer.0.attention.self.value", true)]
    [InlineData("value", "bert.encoder.layer.0.attention.self.value_proj", false)]
    [InlineData("self.value", "bert.encoder.layer.1.attention.self.value", true)]
    [InlineData(@"layer\.0\..*query", "bert.encoder.layer.0.attention.self.query", true)]
    [InlineData(@"layer\.0\..*query", "bert.encoder.layer.1.attention.self.query", false)]
    [InlineData("query|key", "bert.encoder.layer.1.attention.self.key", true)]
    [InlineData("ery", "bert.encoder.layer.1.attention.self.query", false)]
    public void A_pattern_key_matches_the_end_of_a_module_name_at_a_dot_as_peft_does(string key, string module, bool matches)
    {
        (ModulePattern.FirstMatch(new[] { key }, module) is not null).Should().Be(matches);
    }

    [Fact]
    public void Rank_and_alpha_patterns_give_the_matching_adapters_their_own_rank_and_scaling()
    {
        using var model = Fixture("bert");
        var options = new LoraOptions
        {
            Rank = 4, Alpha = 8, LoraQuery = true, LoraValue = true,
            RankPattern = new Dictionary<string, int> { [@"layer\.0\..*query"] = 16, ["value"] = 2 },
            AlphaPattern = new Dictionary<string, double> { ["value"] = 6 },
        };

        LoraInjector.Apply(model, options);
        var layers = LoraInjector.LinearLayers(model);

        layers["bert.encoder.layer.0.attention.self.query"].Rank.Should().Be(16);
        layers["bert.encoder.layer.0.attention.self.query"].Scaling.Should().BeApproximately(8.0 / 16, 1e-12, "alpha stays global, divided by the module's rank");
        layers["bert.encoder.layer.1.attention.self.query"].Rank.Should().Be(4);
        layers["bert.encoder.layer.1.attention.self.value"].Rank.Should().Be(2);
        layers["bert.encoder.layer.1.attention.self.value"].Scaling.Should().BeApproximately(6.0 / 2, 1e-12);
        layers["bert.encoder.layer.1.attention.self.value"].LoraA.shape.Should().Equal(2, layers["bert.encoder.layer.1.attention.self.value"].InFeatures);
    }

    [Fact]
    public void Layers_pattern_names_the_list_layers_to_transform_indexes()
    {
        using var model = Fixture("gpt2");
        var adapted = LoraInjector.Apply(model, new LoraOptions
        {
            TargetModules = new[] { "c_attn" }, LayersToTransform = new[] { 1 }, LayersPattern = new[] { "h" },
        }).AdaptedModules;
        using var other = Fixture("gpt2");
        var none = () => LoraInjector.Apply(other, new LoraOptions
        {
            TargetModules = new[] { "c_attn" }, LayersToTransform = new[] { 1 }, LayersPattern = new[] { "layers" },
        });

        adapted.Should().Equal("transformer.h.1.attn.c_attn");
        none.Invoking(f => f()).Should().NotThrow();
        LoraInjector.LinearLayers(other).Values.Should().NotContain(l => l.HasAdapter, "no module of GPT-2 sits in a list named 'layers'");
        var noIndices = () => new LoraOptions { LayersPattern = new[] { "h" } }.Validate();
        noIndices.Should().Throw<ArgumentException>().WithMessage("*LayersToTransform*");
    }

    [Fact]
    public void Patterns_are_written_to_adapter_config_and_read_back_into_the_same_model()
    {
        using var dir = new TempDir();
        var options = new LoraOptions
        {
            Rank = 4, Alpha = 8, LoraQuery = true, LoraValue = true, LayersToTransform = new[] { 0, 1 }, LayersPattern = new[] { "layer" },
            RankPattern = new Dictionary<string, int> { ["value"] = 2 }, AlphaPattern = new Dictionary<string, double> { ["query"] = 12 },
        };
        float[] expected;
        using (var model = Fixture("bert"))
        {
            LoraInjector.Apply(model, options);
            using (torch.no_grad())
                foreach (var layer in LoraInjector.LinearLayers(model).Values.Where(l => l.HasAdapter)) layer.LoraB.normal_(0, 0.1);
            expected = ProbeLogits.Of(model);
            PeftAdapter.Save(model, dir.Path, options);
        }
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, PeftAdapter.ConfigFile)))!;
        using var reloaded = Fixture("bert");
        PeftAdapter.Load(reloaded, dir.Path);

        config["r"]!.GetValue<int>().Should().Be(4);
        config["rank_pattern"]!.AsObject().Select(kv => kv.Key).Should().BeEquivalentTo("bert.encoder.layer.0.attention.self.value", "bert.encoder.layer.1.attention.self.value");
        config["alpha_pattern"]!.AsObject().Select(kv => kv.Key).Should().BeEquivalentTo("bert.encoder.layer.0.attention.self.query", "bert.encoder.layer.1.attention.self.query");
        config["layers_pattern"]!.AsArray().Select(n => n!.GetValue<string>()).Should().Equal("layer");
        LoraInjector.LinearLayers(reloaded)["bert.encoder.layer.1.attention.self.value"].Rank.Should().Be(2);
        ProbeLogits.MaxDifference(ProbeLogits.Of(reloaded), expected).Should().BeLessThan(1e-6f);
    }

    [Fact]
    public void An_adapter_config_with_regex_patterns_as_peft_writes_them_loads_with_the_right_ranks_and_scalings()
    {
        using var dir = new TempDir();
        using (var model = Fixture("bert"))
        {
            LoraInjector.Apply(model, new LoraOptions
            {
                Rank = 4, Alpha = 8, LoraQuery = true, LoraValue = true,
                RankPattern = new Dictionary<string, int> { ["value"] = 2 }, AlphaPattern = new Dictionary<string, double> { ["value"] = 3 },
            });
            PeftAdapter.Save(model, dir.Path, new LoraOptions { Rank = 4, Alpha = 8 });
        }
        // Rewrite the patterns the way a user writes them for PEFT: one short regex key instead of full names.
        var path = Path.Combine(dir.Path, PeftAdapter.ConfigFile);
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;
        config["rank_pattern"] = new JsonObject { [@"layer\.\d+\.attention\.self\.value"] = 2 };
        config["alpha_pattern"] = new JsonObject { ["value"] = 3 };
        File.WriteAllText(path, config.ToJsonString());
        using var loaded = Fixture("bert");

        PeftAdapter.Load(loaded, dir.Path);

        var value = LoraInjector.LinearLayers(loaded)["bert.encoder.layer.0.attention.self.value"];
        var query = LoraInjector.LinearLayers(loaded)["bert.encoder.layer.0.attention.self.query"];
        (value.Rank, value.Scaling).Should().Be((2, 1.5));
        (query.Rank, query.Scaling).Should().Be((4, 2.0));
    }
}
