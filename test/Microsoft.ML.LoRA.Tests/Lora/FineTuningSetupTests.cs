using System.Text.Json;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Lora;

/// <summary>Each fine-tuning method makes exactly its part of the model trainable; modules the checkpoint lacks train by default.</summary>
public class FineTuningSetupTests
{
    static SequenceClassifier MaskedLmBert() => PretrainedModel.Load(SharedData.PretrainedBert, numLabels: 3);

    static List<string> Trainable(SequenceClassifier model) =>
        model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToList();

    [Fact]
    public void A_masked_LM_checkpoint_reports_its_pooler_and_classifier_as_created()
    {
        using var model = MaskedLmBert();

        model.CreatedModules.Should().BeEquivalentTo("bert.pooler", "classifier");
    }

    [Fact]
    public void LoRA_trains_adapters_the_head_and_the_created_pooler()
    {
        using var model = MaskedLmBert();

        var report = FineTuningSetup.Apply(model, FineTuning.Lora, new LoraOptions());

        report.SavedModules.Should().BeEquivalentTo("classifier", "bert.pooler");
        Trainable(model).Where(n => !LoraLinear.IsAdapterParameter(n)).Should().BeEquivalentTo(
            "bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias");
        Trainable(model).Count(LoraLinear.IsAdapterParameter).Should().Be(24, "6 linear layers in each of 2 layers, A and B each");
    }

    [Fact]
    public void All_linear_leaves_the_created_pooler_to_train_in_full_instead_of_adapting_its_random_weights()
    {
        using var model = MaskedLmBert();

        var report = FineTuningSetup.Apply(model, FineTuning.Lora, new LoraOptions { TargetModules = new[] { "all-linear" } });

        report.AdaptedModules.Should().HaveCount(12, "6 linear layers in each of the 2 layers").And.NotContain("bert.pooler.dense");
        report.SavedModules.Should().Contain("bert.pooler");
    }

    [Fact]
    public void Modules_to_save_replace_the_default_so_a_created_module_can_stay_frozen()
    {
        using var model = MaskedLmBert();

        FineTuningSetup.Apply(model, FineTuning.Lora, new LoraOptions { ModulesToSave = new[] { "classifier" } });

        Trainable(model).Should().NotContain(n => n.StartsWith("bert.pooler."));
        model.ParametersBeyondBase().Select(p => p.name).Should().Contain("bert.pooler.dense.weight", "a created module is saved even when frozen");
    }

    [Fact]
    public void Head_only_trains_the_head_and_the_created_pooler_and_nothing_else()
    {
        using var model = MaskedLmBert();

        var report = FineTuningSetup.Apply(model, FineTuning.HeadOnly, new LoraOptions());

        report.AdaptedModules.Should().BeEmpty();
        Trainable(model).Should().BeEquivalentTo("bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias");
        LoraInjector.LinearLayers(model).Values.Should().OnlyContain(l => !l.HasAdapter);
    }

    [Fact]
    public void Last_layers_trains_the_last_N_layers_in_full_with_the_head_but_not_the_earlier_layers_or_embeddings()
    {
        using var model = MaskedLmBert();

        var report = FineTuningSetup.Apply(model, FineTuning.LastLayers(1), new LoraOptions());

        report.TrainedLayers.Should().Equal(1);
        var trainable = Trainable(model);
        trainable.Should().Contain("bert.encoder.layer.1.attention.self.query.weight").And.Contain("bert.encoder.layer.1.output.LayerNorm.bias")
            .And.Contain("classifier.weight").And.Contain("bert.pooler.dense.weight");
        trainable.Should().NotContain(n => n.StartsWith("bert.encoder.layer.0.") || n.StartsWith("bert.embeddings."));
    }

    [Fact]
    public void Last_layers_of_GPT2_include_the_final_norm_that_follows_them()
    {
        using var dir = new TempDir();
        using var model = PretrainedModel.Load(TinyCheckpoint.Create("gpt2", dir.File("gpt2")), numLabels: 2);

        FineTuningSetup.Apply(model, FineTuning.LastLayers(1), new LoraOptions());

        Trainable(model).Should().Contain("transformer.ln_f.weight").And.Contain("transformer.h.1.attn.c_attn.weight").And.Contain("score.weight")
            .And.NotContain(n => n.StartsWith("transformer.h.0.") || n.StartsWith("transformer.wte."));
    }

    [Fact]
    public void Full_fine_tuning_trains_every_parameter()
    {
        using var model = MaskedLmBert();

        FineTuningSetup.Apply(model, FineTuning.Full, new LoraOptions());

        Trainable(model).Should().HaveCount(model.named_parameters().Count());
        ParameterCounts.Of(model).TrainablePercent.Should().Be(100);
    }

    [Fact]
    public void Asking_for_more_last_layers_than_the_model_has_is_refused_with_the_layer_count()
    {
        using var model = MaskedLmBert();

        var act = () => FineTuningSetup.Apply(model, FineTuning.LastLayers(3), new LoraOptions());

        act.Should().Throw<ArgumentException>().WithMessage("*LastLayers(3)*has (2)*FineTuning.Full*");
    }

    [Theory]
    [InlineData("lora", "lora")]
    [InlineData("HEAD", "head")]
    [InlineData("head-only", "head")]
    [InlineData("last-layers:2", "last-layers:2")]
    [InlineData(" full ", "full")]
    public void The_text_form_parses_and_prints_back(string text, string canonical)
    {
        var method = FineTuning.Parse(text);

        method.ToString().Should().Be(canonical);
        JsonSerializer.Deserialize<FineTuning>(JsonSerializer.Serialize(method)).Should().Be(method);
    }

    [Theory]
    [InlineData("last-layers:0")]
    [InlineData("last-layers")]
    [InlineData("qlora")]
    public void A_bad_method_name_is_refused_with_the_accepted_forms(string text)
    {
        var act = () => FineTuning.Parse(text);

        act.Should().Throw<FormatException>().WithMessage("*lora, head, last-layers:N (N >= 1) or full*");
    }
}
