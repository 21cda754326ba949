using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Lora;

/// <summary>Which layers get adapters, what trains, and how many parameters that is.</summary>
public class LoraInjectorTests
{
    static SequenceClassifier Fixture(string family) => PretrainedModel.Load(SharedData.Fixture(family), numLabels: 2);

    static IReadOnlyList<string> Adapted(string family, LoraOptions options)
    {
        using var model = Fixture(family);
        return LoraInjector.Apply(model, options).AdaptedModules;
    }

    [Theory]
    [InlineData("bert", 6)]
    [InlineData("roberta", 6)]
    [InlineData("distilbert", 6)]
    [InlineData("gpt2", 4)]
    public void Without_targets_every_linear_layer_of_the_transformer_layers_is_adapted_but_not_the_head(string family, int perLayer)
    {
        using var model = Fixture(family);
        var layers = model.Config.NumLayers;
        var inLayers = LoraInjector.LinearLayers(model).Keys.Where(n => LoraInjector.LayerIndexOf(n + ".") is not null).ToList();

        var adapted = LoraInjector.Apply(model, new LoraOptions()).AdaptedModules;

        adapted.Should().BeEquivalentTo(inLayers, "the default adapts the attention projections and the feed-forward layers");
        adapted.Should().HaveCount(perLayer * layers);
        adapted.Should().NotContain(n => model.Layout.HeadModules.Contains(n));
    }

    [Fact]
    public void The_default_targets_are_the_switches_query_key_value_projection_and_mlp()
    {
        Adapted("bert", new LoraOptions()).Should().Equal(
            Adapted("bert", new LoraOptions { LoraQuery = true, LoraKey = true, LoraValue = true, LoraProjection = true, LoraMlp = true }));
    }

    [Fact]
    public void Mlp_switch_means_both_feed_forward_layers_but_not_the_attention_output()
    {
        var adapted = Adapted("bert", new LoraOptions { LoraMlp = true });

        adapted.Should().BeEquivalentTo(
            "bert.encoder.layer.0.intermediate.dense", "bert.encoder.layer.0.output.dense",
            "bert.encoder.layer.1.intermediate.dense", "bert.encoder.layer.1.output.dense");
    }

    [Theory]
    [InlineData("bert", "classifier")]
    [InlineData("distilbert", "classifier")]
    [InlineData("roberta", "classifier.out_proj")]
    [InlineData("gpt2", "score")]
    public void All_linear_never_includes_the_classification_head(string family, string head)
    {
        var adapted = Adapted(family, new LoraOptions { TargetModules = new[] { "all-linear" } });

        adapted.Should().NotContain(head);
        adapted.Should().NotContain(a => a == "pre_classifier" || a == "classifier.dense");
        adapted.Count.Should().BeGreaterThan(6);
    }

    [Fact]
    public void Names_suffixes_regexes_and_layer_filters_combine()
    {
        Adapted("distilbert", new LoraOptions { TargetModules = new[] { "distilbert.transformer.layer.1.ffn.lin1" } })
            .Should().Equal("distilbert.transformer.layer.1.ffn.lin1");
        Adapted("distilbert", new LoraOptions { TargetModules = new[] { "out_lin" }, LayersToTransform = new[] { 0 } })
            .Should().Equal("distilbert.transformer.layer.0.attention.out_lin");
        Adapted("gpt2", new LoraOptions { TargetModulesRegex = @".*\.h\.1\.mlp\.c_(fc|proj)" })
            .Should().Equal("transformer.h.1.mlp.c_fc", "transformer.h.1.mlp.c_proj");
    }

    [Fact]
    public void An_unknown_target_is_an_error_that_shows_real_names()
    {
        var act = () => Adapted("bert", new LoraOptions { TargetModules = new[] { "q_proj" } });

        act.Should().Throw<ArgumentException>().WithMessage("*'q_proj' match no linear layer*bert.encoder.layer.0.attention.self.query*");
    }

    [Fact]
    public void Frozen_base_trainable_adapters_and_head_by_default()
    {
        using var model = Fixture("distilbert");

        LoraInjector.Apply(model, new LoraOptions { TargetModules = new[] { "q_lin", "v_lin" } });

        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToList();
        trainable.Should().OnlyContain(n => n.Contains(".lora_") || n.StartsWith("pre_classifier.") || n.StartsWith("classifier."));
        trainable.Should().Contain(new[] { "pre_classifier.weight", "classifier.bias" });
    }

    [Theory]
    [InlineData(LoraBias.None, 0)]
    [InlineData(LoraBias.LoraOnly, 12)]   // the 6 adapted linear layers of each of the 2 layers
    [InlineData(LoraBias.All, 1 + 2 * 8 + 1 + 1)]   // embeddings LayerNorm, 8 per layer, pooler, classifier
    public void Bias_modes_choose_which_biases_train(LoraBias bias, int expectedBaseBiases)
    {
        using var model = Fixture("bert");

        LoraInjector.Apply(model, new LoraOptions { Bias = bias, ModulesToSave = Array.Empty<string>() });

        model.named_parameters().Count(p => p.parameter.requires_grad && p.name.EndsWith(".bias")).Should().Be(expectedBaseBiases);
    }

    [Fact]
    public void Lora_head_adapts_the_head_instead_of_training_it_in_full()
    {
        using var model = Fixture("distilbert");

        var report = LoraInjector.Apply(model, new LoraOptions { LoraHead = true });

        report.AdaptedModules.Should().BeEquivalentTo("pre_classifier", "classifier");
        report.SavedModules.Should().BeEmpty();
        model.named_parameters().Single(p => p.name == "classifier.weight").parameter.requires_grad.Should().BeFalse();
    }

    [Theory]
    [InlineData("distilbert-base-uncased.json", null, false, 66_955_010L, 0L, 592_130L)]
    [InlineData("distilbert-base-uncased.json", "q_lin,v_lin", false, 66_955_010L + 147_456L, 147_456L, 592_130L + 147_456L)]
    [InlineData("distilbert-base-uncased.json", null, true, 66_955_010L + 516_096L, 516_096L, 592_130L + 516_096L)]
    [InlineData("bert-base-uncased.json", "query,value", false, 109_483_778L + 294_912L, 294_912L, 1_538L + 294_912L)]
    public void Parameter_counts_of_real_configs(string config, string? targets, bool qvMlp, long total, long lora, long trainable)
    {
        using var model = ModelFactory.Create(TransformerConfig.Load(SharedData.Config(config)), 2);
        var options = new LoraOptions
        {
            Rank = 8,
            TargetModules = targets?.Split(',') ?? Array.Empty<string>(),
            LoraQuery = qvMlp, LoraValue = qvMlp, LoraMlp = qvMlp,
        };
        if (qvMlp) options.TargetModules = null;

        LoraInjector.Apply(model, options);
        var counts = ParameterCounts.Of(model);

        counts.Lora.Should().Be(lora);
        counts.Trainable.Should().Be(trainable);
        counts.Total.Should().Be(total);
    }

    [Fact]
    public void Peft_target_modules_are_the_shortest_unambiguous_suffixes()
    {
        using var model = Fixture("bert");
        var report = LoraInjector.Apply(model, new LoraOptions { LoraQuery = true, LoraValue = true, LoraMlp = true });
        var all = model.named_modules().Select(m => m.name).ToList();

        var suffixes = LoraInjector.MinimalSuffixes(report.AdaptedModules, all);

        suffixes.Should().Contain(new[] { "query", "value", "intermediate.dense" });
        suffixes.Should().NotContain("output.dense", "that would also match attention.output.dense");
        all.Where(n => suffixes.Any(s => LoraInjector.MatchesNameOrSuffix(n, s))).Should().BeEquivalentTo(report.AdaptedModules);
    }
}
