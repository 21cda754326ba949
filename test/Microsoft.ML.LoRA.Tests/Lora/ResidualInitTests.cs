using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tests.Lora;

/// <summary>
/// PiSSA and OLoRA as PEFT computes them: A and B taken from the weight, the weight left with the residual, the output
/// unchanged at the start, and the residual recomputed when the adapter is loaded.
/// </summary>
public class ResidualInitTests
{
    static SequenceClassifier Fixture(string family) => PretrainedModel.Load(SharedData.Fixture(family), numLabels: 2);

    static LoraOptions Options(LoraInit init) => new() { Rank = 4, Alpha = 8, Init = init, LoraQuery = true, LoraValue = true, Dropout = 0 };

    [Theory]
    [InlineData(LoraInit.Pissa)]
    [InlineData(LoraInit.Olora)]
    public void The_output_is_unchanged_at_the_start(LoraInit init)
    {
        using var model = Fixture("bert");
        var before = ProbeLogits.Of(model);

        LoraInjector.Apply(model, Options(init));

        var layer = LoraInjector.LinearLayers(model)["bert.encoder.layer.0.attention.self.query"];
        layer.LoraB.abs().sum().item<float>().Should().BeGreaterThan(0, "B is taken from the weight, not zero");
        ProbeLogits.MaxDifference(ProbeLogits.Of(model), before).Should().BeLessThan(1e-5f);
    }

    [Fact]
    public void Pissa_moves_the_top_singular_components_into_the_adapter()
    {
        using var model = Fixture("bert");
        var layer = LoraInjector.LinearLayers(model)["bert.encoder.layer.1.attention.self.value"];
        using var scope = torch.NewDisposeScope();
        var singular = torch.linalg.svdvals(layer.BaseWeight().clone());

        LoraInjector.Apply(model, Options(LoraInit.Pissa));

        // The residual's largest singular value is the weight's fifth: the first four went into s·B·A.
        var residual = torch.linalg.svdvals(layer.BaseWeight());
        residual[0].item<float>().Should().BeApproximately(singular[4].item<float>(), 1e-4f);
        var delta = layer.DeltaWeight();
        torch.linalg.svdvals(delta).narrow(0, 0, 4).sub(singular.narrow(0, 0, 4)).abs().max().item<float>().Should().BeLessThan(1e-4f);
    }

    [Fact]
    public void Olora_takes_orthonormal_columns_for_B()
    {
        using var model = Fixture("bert");
        LoraInjector.Apply(model, Options(LoraInit.Olora));
        var b = LoraInjector.LinearLayers(model)["bert.encoder.layer.0.attention.self.query"].LoraB;
        using var scope = torch.NewDisposeScope();

        b.t().matmul(b).sub(torch.eye(4)).abs().max().item<float>().Should().BeLessThan(1e-5f);
    }

    [Theory]
    [InlineData(LoraInit.Pissa, "pissa")]
    [InlineData(LoraInit.Olora, "olora")]
    public void A_saved_adapter_records_the_initialisation_and_loads_back_over_the_recomputed_residual(LoraInit init, string peftName)
    {
        using var dir = new TempDir();
        float[] expected;
        using (var model = Fixture("bert"))
        {
            LoraInjector.Apply(model, Options(init));
            using (torch.no_grad())
            {
                torch.manual_seed(7);
                foreach (var layer in LoraInjector.LinearLayers(model).Values.Where(l => l.HasAdapter)) layer.LoraB.add_(torch.randn_like(layer.LoraB).mul_(0.05));
            }
            expected = ProbeLogits.Of(model);
            PeftAdapter.Save(model, dir.Path, Options(init));
        }
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, PeftAdapter.ConfigFile)))!;
        using var loaded = Fixture("bert");

        PeftAdapter.Load(loaded, dir.Path);

        config["init_lora_weights"]!.GetValue<string>().Should().Be(peftName);
        ProbeLogits.MaxDifference(ProbeLogits.Of(loaded), expected).Should().BeLessThan(1e-5f);
    }

    [Fact]
    public void Pissa_with_randomized_svd_cannot_be_loaded_and_says_how_to_convert_it()
    {
        using var dir = new TempDir();
        using (var model = Fixture("bert"))
        {
            LoraInjector.Apply(model, Options(LoraInit.Pissa));
            PeftAdapter.Save(model, dir.Path, Options(LoraInit.Pissa));
        }
        var path = Path.Combine(dir.Path, PeftAdapter.ConfigFile);
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;
        config["init_lora_weights"] = "pissa_niter_4";
        File.WriteAllText(path, config.ToJsonString());
        using var loaded = Fixture("bert");

        var load = () => PeftAdapter.Load(loaded, dir.Path);

        load.Should().Throw<CheckpointFormatException>().WithMessage("*pissa_niter_4*path_initial_model_for_weight_conversion*");
    }

    [Fact]
    public void Impossible_combinations_are_refused()
    {
        using var gpt2 = Fixture("gpt2");
        var olora = () => LoraInjector.Apply(gpt2, new LoraOptions { Rank = 2, Init = LoraInit.Olora, TargetModules = new[] { "c_attn" } });
        using var bert = Fixture("bert");
        var tooLarge = () => LoraInjector.Apply(bert, new LoraOptions { Rank = 1000, Init = LoraInit.Pissa, LoraQuery = true });
        var withDora = () => new LoraOptions { Init = LoraInit.Pissa, UseDora = true }.Validate();

        olora.Should().Throw<NotSupportedException>().WithMessage("*OLoRA*GPT-2*");
        tooLarge.Should().Throw<ArgumentException>().WithMessage("*lower the rank*");
        withDora.Should().Throw<ArgumentException>().WithMessage("*DoRA*");
    }
}
