using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Diagnostics;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tests.Support;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tests.Checkpoints;

/// <summary>
/// How a checkpoint's tensors map onto a model: with or without the family prefix, with extra pre-training heads,
/// without a classification head, sharded — and the errors when tensors are missing or have other shapes.
/// </summary>
public sealed class WeightLoadingTests : IDisposable
{
    readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    public static IEnumerable<object[]> Families => SharedData.Families.Select(f => new object[] { f });

    string Folder(string name) => Path.Combine(_dir.Path, name);

    static LogitsCases Cases(string family) => LogitsCases.Load(Path.Combine(SharedData.Fixture(family), "cases.json"));

    static float[][] Logits(string folder, LogitsCases cases)
    {
        using var model = PretrainedModel.Load(folder);
        return cases.Run(model);
    }

    /// <summary>Loads <paramref name="folder"/> with WeightLoader directly, returning its report.</summary>
    static WeightLoadReport LoadReport(string folder, List<string>? log = null)
    {
        var checkpoint = CheckpointFolder.Open(folder);
        using var model = ModelFactory.Create(checkpoint.Config, checkpoint.Config.NumLabels);
        using var weights = checkpoint.OpenWeights();
        return WeightLoader.Load(model, weights, log is null ? null : log.Add);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Checkpoints_with_and_without_the_family_prefix_load_identically(string family)
    {
        var prefix = FixtureVariants.BasePrefix(family) + ".";
        var tensors = FixtureVariants.ReadTensors(family);
        try
        {
            var stripped = tensors.Select(t => KeyValuePair.Create(t.Key.StartsWith(prefix, StringComparison.Ordinal) ? t.Key[prefix.Length..] : t.Key, t.Value)).ToList();
            stripped.Select(t => t.Key).Should().NotContain(n => n.StartsWith(prefix, StringComparison.Ordinal));
            var folder = FixtureVariants.WriteFolder(Folder("stripped"), family, stripped);
            var cases = Cases(family);

            var withoutPrefix = Logits(folder, cases);
            var withPrefix = Logits(SharedData.Fixture(family), cases);

            LogitsCases.MaxAbsDifference(withoutPrefix, withPrefix).Should().Be(0);
            LogitsCases.MaxAbsDifference(withoutPrefix, cases.Logits!).Should().BeLessThan(cases.Tolerance);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    [Theory]
    [InlineData("bert", new[] { "cls.predictions.bias", "cls.predictions.transform.dense.weight", "cls.seq_relationship.weight" })]
    [InlineData("distilbert", new[] { "vocab_transform.weight", "vocab_layer_norm.weight", "vocab_projector.bias" })]
    [InlineData("roberta", new[] { "lm_head.dense.weight", "lm_head.layer_norm.bias", "lm_head.bias" })]
    [InlineData("gpt2", new[] { "lm_head.weight" })]
    public void Extra_pretraining_head_tensors_are_ignored(string family, string[] extra)
    {
        var tensors = FixtureVariants.ReadTensors(family);
        try
        {
            foreach (var name in extra) tensors.Add(name, ones(3, 5));
            var withHeads = tensors;
            var folder = FixtureVariants.WriteFolder(Folder("heads"), family, withHeads);
            var cases = Cases(family);

            var report = LoadReport(folder);
            var original = LoadReport(SharedData.Fixture(family));

            report.LoadedTensors.Should().Be(original.LoadedTensors);
            report.CreatedModules.Should().BeEmpty();
            report.IgnoredTensors.Should().NotContain(extra, "known pre-training heads are dropped silently");
            LogitsCases.MaxAbsDifference(Logits(folder, cases), cases.Logits!).Should().BeLessThan(cases.Tolerance);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    [Fact]
    public void Unknown_extra_tensors_are_listed_as_ignored()
    {
        var tensors = FixtureVariants.ReadTensors("bert");
        try
        {
            tensors.Add("adapter.extra.weight", ones(2));
            var folder = FixtureVariants.WriteFolder(Folder("unknown"), "bert", tensors);
            var log = new List<string>();

            var report = LoadReport(folder, log);

            report.IgnoredTensors.Should().Equal("adapter.extra.weight");
            log.Should().Contain(l => l.Contains("Ignored 1 checkpoint tensor(s)") && l.Contains("adapter.extra.weight"));
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    [Theory]
    [InlineData("bert", new[] { "classifier" })]
    [InlineData("distilbert", new[] { "classifier", "pre_classifier" })]
    [InlineData("roberta", new[] { "classifier" })]
    [InlineData("gpt2", new[] { "score" })]
    public void A_checkpoint_without_a_classification_head_gets_one_created_and_reported(string family, string[] created)
    {
        var tensors = FixtureVariants.ReadTensors(family);
        try
        {
            var headless = tensors.Where(t => !created.Any(m => t.Key.StartsWith(m + ".", StringComparison.Ordinal))).ToList();
            headless.Count.Should().BeLessThan(tensors.Count);
            var folder = FixtureVariants.WriteFolder(Folder("headless"), family, headless);
            var log = new List<string>();

            var report = LoadReport(folder, log);

            report.CreatedModules.Should().BeEquivalentTo(created);
            report.LoadedTensors.Should().Be(LoadReport(SharedData.Fixture(family)).LoadedTensors - (tensors.Count - headless.Count));
            foreach (var module in created)
                log.Should().Contain(l => l.Contains($"'{module}' was not in the checkpoint") && l.Contains("created it with random weights"));
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    [Fact]
    public void Weights_whose_shapes_disagree_with_config_json_are_named_with_both_shapes()
    {
        var tensors = FixtureVariants.ReadTensors("bert");
        try
        {
            var folder = FixtureVariants.WriteFolder(Folder("shapes"), "bert", tensors, c => c["intermediate_size"] = 48);

            var e = FluentActions.Invoking(() => PretrainedModel.Load(folder)).Should().Throw<CheckpointFormatException>().Which;

            e.Message.Should().Contain("disagree with the shapes").And.Contain(Path.Combine(folder, "config.json"))
                .And.Contain("'bert.encoder.layer.0.intermediate.dense.weight' is [64, 32] in the checkpoint but the config implies [48, 32]");
            e.FilePath.Should().Contain(Path.Combine(folder, "model.safetensors"));
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    [Fact]
    public void Weights_missing_base_tensors_are_refused_naming_them()
    {
        var tensors = FixtureVariants.ReadTensors("bert");
        try
        {
            var missing = "bert.encoder.layer.1.output.dense.weight";
            var folder = FixtureVariants.WriteFolder(Folder("missing"), "bert", tensors.Where(t => t.Key != missing));

            FluentActions.Invoking(() => PretrainedModel.Load(folder)).Should().Throw<CheckpointFormatException>()
                .WithMessage($"*lacks 1 tensor(s) a bert model with {Path.Combine(folder, "config.json")} needs, e.g. {missing}*");
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    [Fact]
    public void A_classifier_checkpoint_of_another_family_is_refused()
    {
        var tensors = FixtureVariants.ReadTensors("gpt2");
        try
        {
            // GPT-2 weights under a BERT config: nothing BERT needs is there.
            var folder = FixtureVariants.WriteFolder(Folder("wrong-family"), "bert", tensors);

            FluentActions.Invoking(() => PretrainedModel.Load(folder)).Should().Throw<CheckpointFormatException>()
                .WithMessage("*the checkpoint lacks * tensor(s) a bert model*bert.embeddings.word_embeddings.weight*");
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Sharded_safetensors_load_identically_to_the_single_file(string family)
    {
        var tensors = FixtureVariants.ReadTensors(family);
        try
        {
            var folder = FixtureVariants.WriteShardedFolder(Folder("sharded"), family, tensors, shards: 3);
            var cases = Cases(family);

            var checkpoint = CheckpointFolder.Open(folder);
            using (var weights = checkpoint.OpenWeights())
                weights.Files.Should().HaveCount(3);
            LogitsCases.MaxAbsDifference(Logits(folder, cases), Logits(SharedData.Fixture(family), cases)).Should().Be(0);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }
}
