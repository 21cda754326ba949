using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.LoRA.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tests.Lora;

/// <summary>
/// DoRA as PEFT computes it: y = x·(m ⊙ (W + s·B·A) / ‖W + s·B·A‖)ᵀ + b, m starting at W's row norms, merge and
/// unmerge exact, and PEFT's adapter format (use_dora, <c>&lt;layer&gt;.lora_magnitude_vector</c>).
/// </summary>
public class DoraAdapterTests
{
    static SequenceClassifier Fixture(string family) => PretrainedModel.Load(SharedData.Fixture(family), numLabels: 2);

    static LoraOptions Options => new() { Rank = 4, Alpha = 8, UseDora = true, LoraQuery = true, LoraValue = true, Dropout = 0 };

    /// <summary>B random and m moved off the norms, so that every part of the formula matters.</summary>
    static void Perturb(SequenceClassifier model, int seed)
    {
        using var _ = torch.no_grad();
        torch.manual_seed(seed);
        foreach (var layer in LoraInjector.LinearLayers(model).Values.Where(l => l.HasAdapter))
        {
            layer.LoraB.normal_(0, 0.2);
            var m = ((DoraAdapter)layer.Adapter!).MagnitudeVector;
            using var noise = torch.rand_like(m).mul_(0.5).add_(0.75);
            m.mul_(noise);
        }
    }

    static Tensor Input(long seed)
    {
        torch.manual_seed(seed);
        return torch.randn(3, 5, 32);
    }

    [Fact]
    public void A_fresh_dora_adapter_leaves_the_layer_as_it_was()
    {
        using var model = Fixture("bert");
        var layer = LoraInjector.LinearLayers(model)["bert.encoder.layer.0.attention.self.query"];
        using var scope = torch.NewDisposeScope();
        using var __ = torch.no_grad();
        var x = Input(1);
        var before = layer.forward(x);

        LoraInjector.Apply(model, Options);
        var after = layer.forward(x);

        ((DoraAdapter)layer.Adapter!).MagnitudeVector.shape.Should().Equal(layer.OutFeatures);
        after.sub(before).abs().max().item<float>().Should().BeLessThan(1e-5f);
    }

    [Fact]
    public void The_forward_pass_is_the_decomposed_weight_product()
    {
        using var model = Fixture("bert");
        LoraInjector.Apply(model, Options);
        Perturb(model, 3);
        model.eval();
        var layer = LoraInjector.LinearLayers(model)["bert.encoder.layer.1.attention.self.value"];
        var dora = (DoraAdapter)layer.Adapter!;
        using var scope = torch.NewDisposeScope();
        using var __ = torch.no_grad();
        var x = Input(2);

        var w = layer.BaseWeight();
        var updated = w.add(dora.B.matmul(dora.A).mul(dora.Scaling));
        var direction = updated.div(torch.linalg.norm(updated, dims: new long[] { 1 }).unsqueeze(1));
        var expected = torch.nn.functional.linear(x, direction.mul(dora.MagnitudeVector.unsqueeze(1)), layer.bias);

        layer.forward(x).sub(expected).abs().max().item<float>().Should().BeLessThan(2e-5f);
    }

    [Fact]
    public void Merging_gives_the_same_logits_and_unmerging_restores_the_weight()
    {
        using var model = Fixture("bert");
        LoraInjector.Apply(model, Options);
        Perturb(model, 4);
        model.eval();
        var layer = LoraInjector.LinearLayers(model)["bert.encoder.layer.0.attention.self.query"];
        using var scope = torch.NewDisposeScope();
        using var __ = torch.no_grad();
        var original = layer.BaseWeight().clone();
        var unmerged = ProbeLogits.Forward(model);

        foreach (var l in LoraInjector.LinearLayers(model).Values) l.Merge();
        var merged = ProbeLogits.Forward(model);
        foreach (var l in LoraInjector.LinearLayers(model).Values) l.Unmerge();

        merged.sub(unmerged).abs().max().item<float>().Should().BeLessThan(1e-5f);
        layer.BaseWeight().sub(original).abs().max().item<float>().Should().BeLessThan(1e-5f);
    }

    [Fact]
    public void The_magnitude_and_the_factors_get_gradients_and_the_base_weight_stays_frozen()
    {
        using var model = Fixture("bert");
        LoraInjector.Apply(model, Options);
        Perturb(model, 5);
        model.train();
        var layer = LoraInjector.LinearLayers(model)["bert.encoder.layer.0.attention.self.query"];
        var dora = (DoraAdapter)layer.Adapter!;
        using var scope = torch.NewDisposeScope();

        layer.forward(Input(3)).sum().backward();

        dora.MagnitudeVector.requires_grad.Should().BeTrue();
        dora.MagnitudeVector.grad.Should().NotBeNull();
        dora.B.grad!.abs().sum().item<float>().Should().BeGreaterThan(0);
        layer.weight.grad.Should().BeNull("the base weight is frozen");
    }

    [Fact]
    public void A_dora_adapter_is_saved_in_pefts_format_and_loads_back_to_the_same_logits()
    {
        using var dir = new TempDir();
        float[] expected;
        using (var model = Fixture("bert"))
        {
            LoraInjector.Apply(model, Options);
            Perturb(model, 6);
            expected = ProbeLogits.Of(model);
            PeftAdapter.Save(model, dir.Path, Options);
        }
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, PeftAdapter.ConfigFile)))!;
        var keys = SafeTensorsFile.Open(Path.Combine(dir.Path, PeftAdapter.WeightsFile)).Entries.Select(e => e.Name).ToList();
        using var loaded = Fixture("bert");

        var info = PeftAdapter.Load(loaded, dir.Path);

        config["use_dora"]!.GetValue<bool>().Should().BeTrue();
        keys.Should().Contain("base_model.model.bert.encoder.layer.0.attention.self.query.lora_magnitude_vector");
        keys.Should().NotContain(k => k.EndsWith("lora_magnitude_vector.weight", StringComparison.Ordinal), "PEFT stores the magnitude without .weight");
        info.AdaptedModules.Should().HaveCount(4);
        LoraInjector.LinearLayers(loaded).Values.Where(l => l.HasAdapter).Should().OnlyContain(l => l.Adapter is DoraAdapter);
        ProbeLogits.MaxDifference(ProbeLogits.Of(loaded), expected).Should().BeLessThan(1e-6f);
    }

    [Fact]
    public void A_magnitude_without_use_dora_is_refused()
    {
        using var dir = new TempDir();
        using (var model = Fixture("bert"))
        {
            LoraInjector.Apply(model, Options);
            PeftAdapter.Save(model, dir.Path, Options);
        }
        var path = Path.Combine(dir.Path, PeftAdapter.ConfigFile);
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;
        config["use_dora"] = false;
        File.WriteAllText(path, config.ToJsonString());
        using var loaded = Fixture("bert");

        var load = () => PeftAdapter.Load(loaded, dir.Path);

        load.Should().Throw<CheckpointFormatException>().WithMessage("*DoRA magnitude*use_dora*");
    }

    sealed class Row
    {
        public string Label { get; set; } = "";
        public string Text { get; set; } = "";
    }

    sealed class Scores
    {
        public float[] Score { get; set; } = [];
    }

    [Fact]
    public void A_dora_fit_saves_and_loads_with_identical_scores()
    {
        using var dir = new TempDir();
        var bert = TinyCheckpoint.Bert(dir.File("bert"), hidden: 32, layers: 2, heads: 4);
        var ml = new MLContext(seed: 1);
        var rows = TextData.Sst2("train.tsv", 0, 48).Select(r => new Row { Label = r.Label, Text = r.Text }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(
            new LoraTextClassifierOptions { ModelPath = bert, Epochs = 1, BatchSize = 8, MaxSequenceLength = 32, Lora = new LoraOptions { Rank = 2, UseDora = true } }))
            .Fit(data);
        var lora = PipelineStages.LoraStage(model);
        ml.Model.SaveWithLora(model, data.Schema, dir.File("model.zip"));
        var before = ml.Data.CreateEnumerable<Scores>(model.Transform(data), false).Select(s => s.Score).ToList();

        var loaded = ml.Model.LoadWithLora(dir.File("model.zip"), out _);
        var after = ml.Data.CreateEnumerable<Scores>(loaded.Transform(data), false).Select(s => s.Score).ToList();

        LoraInjector.LinearLayers(lora.Model).Values.Where(l => l.HasAdapter).Should().NotBeEmpty().And.OnlyContain(l => l.Adapter is DoraAdapter);
        after.Zip(before, (a, b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max()).Max().Should().Be(0f);
        lora.Dispose();
        PipelineStages.LoraStage(loaded).Dispose();
    }
}
