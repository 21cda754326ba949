using System.Text.Json;
using Microsoft.ML.LoRA.Adaptation;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Tokenization;
using Microsoft.ML.LoRA.Training;
using TorchSharp;

namespace Microsoft.ML.LoRA.Tests.Adaptation;

/// <summary>
/// Two LoRA adaptations of the pre-trained bert-tiny-mlm-en to SMS text with the same seed: one merged, one keeping
/// the adapter. Shared by the tests of <see cref="DomainAdaptationTests"/>.
/// </summary>
public sealed class SmsAdaptations : IDisposable
{
    readonly TempDir _dir = new();

    public SmsAdaptations()
    {
        Merged = DomainAdaptation.Run(Options(Path.Combine(_dir.Path, "merged"), keepAdapter: false), Texts);
        Kept = DomainAdaptation.Run(Options(Path.Combine(_dir.Path, "kept"), keepAdapter: true), Texts);
    }

    public static List<string> Texts { get; } = BertTinyMlm.Sms(0, 400);

    public static DomainAdaptationOptions Options(string output, bool keepAdapter) => new()
    {
        ModelPath = BertTinyMlm.Path, OutputPath = output, KeepAdapter = keepAdapter,
        Lora = new LoraOptions { LoraQuery = true, LoraValue = true, LoraMlp = true, ModulesToSave = new[] { "1.output.LayerNorm" } },
        Epochs = 3, LearningRate = 3e-3, ValidationFraction = 0.25, Seed = 5,
    };

    public DomainAdaptationResult Merged { get; }
    public DomainAdaptationResult Kept { get; }

    public void Dispose() => _dir.Dispose();
}

/// <summary>Domain adaptation lowers the language-model loss on the new domain and writes checkpoints training accepts.</summary>
public class DomainAdaptationTests(SmsAdaptations runs) : IClassFixture<SmsAdaptations>
{
    static float[][] Logits(SequenceClassifier model, string folder, IEnumerable<string> texts)
    {
        var config = TransformerConfig.Load(Path.Combine(folder, "config.json"));
        var encoder = TextEncoders.FromFolder(folder, config, 64);
        model.eval();
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var input = BatchCollator.Collate(texts.Select(t => encoder.Encode(t)).ToList(), encoder.PadTokenId, model.UsesTokenTypes);
        var logits = model.forward(input);
        return Enumerable.Range(0, (int)logits.shape[0]).Select(i => logits[i].data<float>().ToArray()).ToArray();
    }

    /// <summary>A classifier on <paramref name="folder"/> whose new head and pooler draw the same random numbers every time.</summary>
    static SequenceClassifier Classifier(string folder)
    {
        lock (TorchRandomLock.Sync)
        {
            torch.manual_seed(123);
            return PretrainedModel.Load(folder, numLabels: 2);
        }
    }

    static Dictionary<string, torch.Tensor> Read(string file)
    {
        using var source = SafeTensorsSource.OpenFile(file);
        return TorchScopes.Keep(() => source.Names.ToDictionary(n => n, source.ReadFloat32));
    }

    [Fact]
    public void Lora_adaptation_lowers_the_held_out_masked_lm_loss_on_sms_text()
    {
        var r = runs.Merged;
        r.Objective.Should().Be(LanguageModelObjective.MaskedLanguageModel);
        r.Rows.Should().Be(300);
        r.ValidationRows.Should().Be(100);
        r.AdaptedModules.Should().HaveCount(8, "query, value and both feed-forward layers of 2 layers");
        r.TrainableParameters.Should().Be(4 * 8 * (128 + 128) + 4 * 8 * (128 + 512) + 2 * 128,
            "rank-8 adapters on 4 square attention layers and 4 feed-forward layers (128 <-> 512), and the saved LayerNorm");
        r.TrainableParameters.Should().BeLessThan(r.TotalParameters / 50);
        r.ValidationLossAfter.Should().BeLessThan(r.ValidationLossBefore!.Value - 0.05);
        r.FinalLoss.Should().BeLessThan(r.InitialLoss - 0.05);
        r.ValidationPerplexityAfter.Should().BeApproximately(Math.Exp(r.ValidationLossAfter!.Value), 1e-9);
    }

    [Fact]
    public void Full_adaptation_lowers_the_held_out_loss_more_and_changes_the_head()
    {
        using var dir = new TempDir();
        var options = SmsAdaptations.Options(dir.File("full"), keepAdapter: false);
        options.Method = AdaptationMethod.Full;
        options.LearningRate = 1e-3;
        options.Epochs = 2;

        var r = DomainAdaptation.Run(options, SmsAdaptations.Texts);

        r.Method.Should().Be(AdaptationMethod.Full);
        r.TrainableParameters.Should().Be(r.TotalParameters);
        r.AdaptedModules.Should().BeEmpty();
        r.ValidationLossAfter.Should().BeLessThan(r.ValidationLossBefore!.Value - 0.2);
        var written = Read(Path.Combine(r.OutputPath, "model.safetensors"));
        var original = Read(Path.Combine(BertTinyMlm.Path, "model.safetensors"));
        written.Keys.Should().BeEquivalentTo(original.Keys, "the same tensors, Hugging Face names, tied decoder not stored");
        written["cls.predictions.bias"].eq(original["cls.predictions.bias"]).all().item<bool>().Should().BeFalse("the head trains in full adaptation");
    }

    [Fact]
    public void The_written_folder_is_a_checkpoint_training_loads()
    {
        var folder = runs.Merged.OutputPath;
        var config = TransformerConfig.Load(Path.Combine(folder, "config.json"));
        config.Raw["architectures"]!.AsArray().Select(n => n!.GetValue<string>()).Should().Equal("BertForMaskedLM");
        foreach (var file in new[] { "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "adapt.json" })
            File.Exists(Path.Combine(folder, file)).Should().BeTrue(file);
        using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "adapt.json")));
        report.RootElement.GetProperty("method").GetString().Should().Be("Lora");
        report.RootElement.GetProperty("rows").GetInt32().Should().Be(300);
        report.RootElement.GetProperty("validationLossAfter").GetDouble().Should().Be(runs.Merged.ValidationLossAfter!.Value);
        report.RootElement.GetProperty("seed").GetInt32().Should().Be(5);

        var messages = new List<string>();
        using var model = PretrainedModel.Load(folder, numLabels: 2, log: messages.Add);
        messages.Should().NotContain(m => m.Contains("Ignored"), "every stored tensor is a base or masked-LM head tensor");
        LoraInjector.LinearLayers(model).Values.Should().OnlyContain(l => !l.HasAdapter);
        Directory.GetDirectories(Path.GetDirectoryName(folder)!).Should().NotContain(d => Path.GetFileName(d).StartsWith('.'), "no temporary folder is left behind");
    }

    [Fact]
    public void Merged_weights_equal_the_base_plus_the_kept_adapter()
    {
        var texts = BertTinyMlm.Sms(1000, 6);
        using var merged = Classifier(runs.Merged.OutputPath);
        using var withAdapter = Classifier(runs.Kept.OutputPath);
        using var plain = Classifier(runs.Kept.OutputPath);

        var info = PeftAdapter.Load(withAdapter, Path.Combine(runs.Kept.OutputPath, "adapter"));

        info.AdaptedModules.Should().BeEquivalentTo(runs.Merged.AdaptedModules, "the adapter carries the classifier's module names");
        info.SavedTensors.Should().BeEquivalentTo(new[] { "bert.encoder.layer.1.output.LayerNorm.weight", "bert.encoder.layer.1.output.LayerNorm.bias" },
            "the module trained in full travels with the adapter; the frozen masked-LM head is no part of a classifier");
        var expected = Logits(merged, runs.Merged.OutputPath, texts);
        var actual = Logits(withAdapter, runs.Kept.OutputPath, texts);
        var unadapted = Logits(plain, runs.Kept.OutputPath, texts);
        for (int i = 0; i < texts.Count; i++)
            actual[i].Zip(expected[i]).Should().OnlyContain(p => Math.Abs(p.First - p.Second) < 1e-4);
        unadapted.Zip(expected).SelectMany(r => r.First.Zip(r.Second)).Max(p => Math.Abs(p.First - p.Second))
            .Should().BeGreaterThan(1e-4f, "without the adapter the same comparison fails");
    }

    [Fact]
    public void The_kept_adapter_is_a_peft_folder_beside_unchanged_base_weights()
    {
        var folder = runs.Kept.OutputPath;
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "adapter", "adapter_config.json")));
        config.RootElement.GetProperty("peft_type").GetString().Should().Be("LORA");
        config.RootElement.GetProperty("task_type").ValueKind.Should().Be(JsonValueKind.Null);
        config.RootElement.GetProperty("modules_to_save").EnumerateArray().Select(e => e.GetString()).Should().Equal("bert.encoder.layer.1.output.LayerNorm");
        config.RootElement.GetProperty("base_model_name_or_path").GetString().Should().Be(BertTinyMlm.Path);
        config.RootElement.GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()).Should()
            .BeEquivalentTo(new[] { "query", "value", "intermediate.dense", "0.output.dense", "1.output.dense" }, "PEFT's suffixes; 'output.dense' alone would match attention.output.dense too");

        var written = Read(Path.Combine(folder, "model.safetensors"));
        var original = Read(Path.Combine(BertTinyMlm.Path, "model.safetensors"));
        written.Keys.Should().BeEquivalentTo(original.Keys);
        foreach (var (name, tensor) in original) written[name].eq(tensor).all().item<bool>().Should().BeTrue($"{name} is stored as it was, the trained LayerNorm too (its trained values are in the adapter)");
        runs.Kept.ValidationLossAfter.Should().Be(runs.Merged.ValidationLossAfter, "the same seed trains the same adapter");
    }

    [Fact]
    public void The_same_seed_gives_identical_weights_and_another_seed_other_ones()
    {
        using var dir = new TempDir();
        var model = TinyCheckpoint.Create("distilbert", dir.File("base"), seed: 1);
        var texts = BertTinyMlm.Sms(0, 64);
        DomainAdaptationOptions Options(string output, int seed) => new()
        {
            ModelPath = model, OutputPath = dir.File(output), Method = AdaptationMethod.Full, LearningRate = 1e-3, Seed = seed, BatchSize = 16,
        };

        var a = DomainAdaptation.Run(Options("a", 3), texts);
        var b = DomainAdaptation.Run(Options("b", 3), texts);
        var c = DomainAdaptation.Run(Options("c", 4), texts);

        var bytes = File.ReadAllBytes(Path.Combine(a.OutputPath, "model.safetensors"));
        File.ReadAllBytes(Path.Combine(b.OutputPath, "model.safetensors")).Should().Equal(bytes);
        File.ReadAllBytes(Path.Combine(c.OutputPath, "model.safetensors")).Should().NotEqual(bytes);
        b.EpochLosses.Should().Equal(a.EpochLosses);
        var names = Read(Path.Combine(a.OutputPath, "model.safetensors")).Keys;
        names.Should().Contain(new[] { "vocab_transform.weight", "vocab_layer_norm.weight", "vocab_projector.bias" }).And.NotContain("vocab_projector.weight");
    }

    [Fact]
    public void Gpt2_adapts_by_next_token_prediction()
    {
        using var dir = new TempDir();
        var model = TinyCheckpoint.Create("gpt2", dir.File("base"), seed: 1);
        var messages = new List<string>();

        var r = DomainAdaptation.Run(new DomainAdaptationOptions
        {
            ModelPath = model, OutputPath = dir.File("out"), Method = AdaptationMethod.Full, LearningRate = 3e-3, Epochs = 2,
            ValidationFraction = 0.2, MaxSequenceLength = 64, Log = messages.Add,
        }, BertTinyMlm.Sms(0, 200));

        r.Objective.Should().Be(LanguageModelObjective.CausalLanguageModel);
        r.Architecture.Should().Be("GPT2LMHeadModel");
        r.MaskProbability.Should().BeNull();
        r.CreatedHead.Should().BeFalse();
        r.ValidationLossAfter.Should().BeLessThan(r.ValidationLossBefore!.Value - 0.3);
        messages.Should().Contain(m => m.Contains("causal-language-model"));
        var names = Read(Path.Combine(r.OutputPath, "model.safetensors")).Keys;
        names.Should().Contain("transformer.wte.weight").And.NotContain(n => n.StartsWith("lm_head"), "lm_head is tied to wte and not stored");
        using var classifier = PretrainedModel.Load(r.OutputPath, numLabels: 2);
        classifier.Should().BeOfType<Gpt2ForSequenceClassification>();
    }

    [Fact]
    public void A_created_roberta_head_is_written_and_loaded_back()
    {
        using var dir = new TempDir();
        var model = TinyCheckpoint.Create("roberta", dir.File("base"), seed: 1);
        var messages = new List<string>();
        var options = new DomainAdaptationOptions { ModelPath = model, OutputPath = dir.File("out"), Epochs = 1, Log = messages.Add };

        var r = DomainAdaptation.Run(options, BertTinyMlm.Sms(0, 48));

        r.CreatedHead.Should().BeTrue();
        messages.Should().Contain(m => m.Contains("no RobertaForMaskedLM head") && m.Contains("created"));
        var names = Read(Path.Combine(r.OutputPath, "model.safetensors")).Keys;
        names.Should().Contain(new[] { "lm_head.dense.weight", "lm_head.layer_norm.bias", "lm_head.bias" }).And.NotContain(n => n.StartsWith("lm_head.decoder"));
        var (reloaded, report) = LanguageModelCheckpoint.Load(CheckpointFolder.Open(r.OutputPath));
        reloaded.Dispose();
        report.CreatedHead.Should().BeFalse("the written head is loaded back");
    }

    [Fact]
    public void A_bert_pooler_is_carried_through_unchanged()
    {
        using var dir = new TempDir();
        var model = TinyCheckpoint.Bert(dir.File("base"), seed: 1);
        var r = DomainAdaptation.Run(new DomainAdaptationOptions { ModelPath = model, OutputPath = dir.File("out"), Method = AdaptationMethod.Full, LearningRate = 1e-3 },
            BertTinyMlm.Sms(0, 32));

        var written = Read(Path.Combine(r.OutputPath, "model.safetensors"));
        var original = Read(Path.Combine(model, "model.safetensors"));
        written["bert.pooler.dense.weight"].eq(original["bert.pooler.dense.weight"]).all().item<bool>().Should().BeTrue("the masked-LM head does not read the pooler");
        written["bert.embeddings.word_embeddings.weight"].eq(original["bert.embeddings.word_embeddings.weight"]).all().item<bool>().Should().BeFalse();
        written.Keys.Should().Contain("cls.predictions.bias").And.NotContain(n => n.StartsWith("cls.predictions.decoder"));
    }

    [Fact]
    public void Cancelling_writes_nothing()
    {
        using var dir = new TempDir();
        var model = TinyCheckpoint.Create("distilbert", dir.File("base"), seed: 1);
        using var cancel = new CancellationTokenSource();
        var progress = new SynchronousProgress<TrainingProgress>(_ => cancel.Cancel());
        var options = new DomainAdaptationOptions { ModelPath = model, OutputPath = dir.File("out"), BatchSize = 4 };

        var run = () => DomainAdaptation.Run(options, BertTinyMlm.Sms(0, 40), progress, cancel.Token);

        run.Should().Throw<OperationCanceledException>();
        Directory.Exists(dir.File("out")).Should().BeFalse();
        Directory.GetDirectories(dir.Path).Select(Path.GetFileName).Should().Equal("base");
    }

    [Fact]
    public void Bad_input_is_refused_before_any_training()
    {
        using var dir = new TempDir();
        var model = TinyCheckpoint.Create("distilbert", dir.File("base"), seed: 1);
        Directory.CreateDirectory(dir.File("full"));
        File.WriteAllText(dir.File("full/keep.txt"), "x");
        DomainAdaptationOptions Options(string output) => new() { ModelPath = model, OutputPath = dir.File(output) };

        FluentActions.Invoking(() => DomainAdaptation.Run(Options("a"), new[] { "", "  ", null })).Should().Throw<InvalidDataException>().WithMessage("*no text*");
        FluentActions.Invoking(() => DomainAdaptation.Run(Options("full"), new[] { "hi" })).Should().Throw<IOException>().WithMessage("*not empty*");
        var none = Options("b");
        none.Lora.TargetModules = new List<string>();
        FluentActions.Invoking(() => DomainAdaptation.Run(none, new[] { "hi there" })).Should().Throw<ArgumentException>().WithMessage("*train nothing*");
        var head = Options("c");
        head.Lora.LoraHead = true;
        FluentActions.Invoking(() => DomainAdaptation.Run(head, new[] { "hi" })).Should().Throw<ArgumentException>().WithMessage("*no classification head*");
        var keepFull = Options("d");
        keepFull.Method = AdaptationMethod.Full;
        keepFull.KeepAdapter = true;
        FluentActions.Invoking(() => DomainAdaptation.Run(keepFull, new[] { "hi" })).Should().Throw<ArgumentException>().WithMessage("*KeepAdapter*");
        File.ReadAllText(dir.File("full/keep.txt")).Should().Be("x");
    }
}
