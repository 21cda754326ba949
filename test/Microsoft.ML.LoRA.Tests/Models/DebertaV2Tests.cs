using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Diagnostics;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Training;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.LoRA.Tests.Models;

/// <summary>
/// DeBERTa-v2 / v3 against the reference logits of Fixtures/deberta-v2 (made by make_fixtures.py, an independent
/// plain-PyTorch implementation of Hugging Face's DebertaV2ForSequenceClassification and PEFT's LoRA), with and without
/// the PEFT adapter; its relative-position buckets, head readout, checkpointing, config refusals and training.
/// </summary>
public class DebertaV2Tests
{
    /// <summary>The committed fixtures (test/Microsoft.ML.LoRA.Tests/Fixtures/deberta-v2).</summary>
    static string Fixtures => Path.Combine(SharedData.RepoRoot, "test", "Microsoft.ML.LoRA.Tests", "Fixtures", "deberta-v2");

    static string Fixture(string variant) => Path.Combine(Fixtures, variant);

    /// <summary>v3: DeBERTa-v3's shape (log buckets, shared keys, normed table); v2: the other switches (pos_*_proj, absolute positions, token types, embed_proj, clamped distances).</summary>
    public static IEnumerable<object[]> Variants => new[] { new object[] { "v3" }, new object[] { "v2" } };

    [Theory]
    [MemberData(nameof(Variants))]
    public void Base_model_logits_match_the_reference(string variant)
    {
        var cases = LogitsCases.Load(Path.Combine(Fixture(variant), "cases.json"));
        using var model = PretrainedModel.Load(Fixture(variant));

        var logits = cases.Run(model);

        model.Should().BeOfType<DebertaV2ForSequenceClassification>();
        model.CreatedModules.Should().BeEmpty("the fixture holds the pooler and the classifier");
        LogitsCases.MaxAbsDifference(logits, cases.Logits!).Should().BeLessThan(1e-4);
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Logits_with_the_peft_adapter_match_the_reference(string variant)
    {
        var cases = LogitsCases.Load(Path.Combine(Fixture(variant), "cases.json"));
        using var model = PretrainedModel.Load(Fixture(variant));

        var info = PeftAdapter.Load(model, Path.Combine(Fixture(variant), "adapter"));
        var logits = cases.Run(model);

        info.AdaptedModules.Should().Contain("pooler.dense", "PEFT's 'dense' target reaches the pooler too")
            .And.Contain(m => m.EndsWith(".attention.self.query_proj"));
        if (variant == "v2") info.AdaptedModules.Should().Contain(m => m.EndsWith(".pos_key_proj")).And.Contain(m => m.EndsWith(".pos_query_proj"));
        LogitsCases.MaxAbsDifference(logits, cases.LogitsWithAdapter!).Should().BeLessThan(1e-4);
        LogitsCases.MaxAbsDifference(logits, cases.Logits!).Should().BeGreaterThan(0.1, "the adapter changes the output");
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Bf16_products_and_int8_scoring_stay_close_to_the_reference(string variant)
    {
        // The base model: the fixtures' adapters (B drawn large) make the adapted logits sensitive enough that noise of
        // bf16's size on every product moves them by a quarter of their spread in the reference implementation too.
        var cases = LogitsCases.Load(Path.Combine(Fixture(variant), "cases.json"));
        using var model = PretrainedModel.Load(Fixture(variant));
        var reference = cases.Logits!;
        double spread = LogitSpread.Of(reference);

        model.Use(ComputePrecision.BFloat16);
        var bf16 = cases.Run(model);
        model.Use(ComputePrecision.Float32);
        model.UseForScoring(ComputePrecision.Int8);
        var int8 = cases.Run(model);

        // The relative-position projections go through the same linear layers, so they take the same formats.
        LogitsCases.MaxAbsDifference(bf16, reference).Should().BeInRange(1e-4, 0.05 * spread);
        LogitsCases.MaxAbsDifference(int8, reference).Should().BeInRange(1e-4, 0.2 * spread);
    }

    [Fact]
    public void A_trained_adapter_saved_in_peft_layout_reloads_to_the_same_logits()
    {
        var cases = LogitsCases.Load(Path.Combine(Fixture("v2"), "cases.json"));
        using var dir = new TempDir();
        var options = new LoraOptions { Rank = 4, Alpha = 8, TargetModules = new[] { "all-linear" } };
        float[][] expected;
        using (var model = PretrainedModel.Load(Fixture("v2")))
        {
            lock (TorchRandomLock.Sync) LoraInjector.Apply(model, options);
            using (torch.no_grad())
                foreach (var (name, p) in model.named_parameters().Where(p => p.name.EndsWith("lora_B.weight")))
                    p.normal_(0, 0.2);   // as after training: B away from zero
            expected = cases.Run(model);
            PeftAdapter.Save(model, dir.Path, options);
        }
        using var reloaded = PretrainedModel.Load(Fixture("v2"));

        var info = PeftAdapter.Load(reloaded, dir.Path);

        info.AdaptedModules.Should().Contain(new[] { "deberta.embeddings.embed_proj", "deberta.encoder.layer.0.attention.self.pos_query_proj" });
        LogitsCases.MaxAbsDifference(cases.Run(reloaded), expected).Should().BeLessThan(1e-6);
        LogitsCases.MaxAbsDifference(expected, cases.Logits!).Should().BeGreaterThan(0.01);
    }

    [Fact]
    public void Parameter_names_are_hugging_faces()
    {
        using var v3 = PretrainedModel.Load(Fixture("v3"));
        using var v2 = PretrainedModel.Load(Fixture("v2"));

        var names = v3.named_parameters().Select(p => p.name).ToList();
        names.Should().Contain(new[]
        {
            "deberta.embeddings.word_embeddings.weight", "deberta.embeddings.LayerNorm.weight",
            "deberta.encoder.layer.0.attention.self.query_proj.weight", "deberta.encoder.layer.2.output.LayerNorm.bias",
            "deberta.encoder.rel_embeddings.weight", "deberta.encoder.LayerNorm.weight", "pooler.dense.weight", "classifier.bias",
        });
        names.Should().NotContain(n => n.Contains("position_embeddings") || n.Contains("token_type") || n.Contains("pos_key_proj") || n.Contains("embed_proj"));
        v2.named_parameters().Select(p => p.name).Should().Contain(new[]
        {
            "deberta.embeddings.position_embeddings.weight", "deberta.embeddings.token_type_embeddings.weight", "deberta.embeddings.embed_proj.weight",
            "deberta.encoder.layer.1.attention.self.pos_key_proj.bias", "deberta.encoder.layer.1.attention.self.pos_query_proj.weight",
        }).And.NotContain("deberta.encoder.LayerNorm.weight");
    }

    [Fact]
    public void Relative_positions_match_hugging_faces_log_buckets()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures, "log_buckets.json")));
        foreach (var table in doc.RootElement.EnumerateArray())
        {
            int buckets = table.GetProperty("position_buckets").GetInt32(), max = table.GetProperty("max_relative_positions").GetInt32();
            long length = table.GetProperty("length").GetInt64();
            long[] Longs(string key) => table.GetProperty(key).EnumerateArray().Select(e => e.GetInt64()).ToArray();

            using var relative = RelativePositionBuckets.Build(length, buckets, max, CPU);

            relative.select(0, 0).data<long>().ToArray().Should().Equal(Longs("relative_positions"), $"query 0, buckets {buckets}, max {max}");
            relative.select(1, 0).data<long>().ToArray().Should().Equal(Longs("first_key"), $"key 0, buckets {buckets}, max {max}");
        }
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void The_first_token_readout_equals_the_whole_last_layer(string variant)
    {
        var cases = LogitsCases.Load(Path.Combine(Fixture(variant), "cases.json"));
        using var model = PretrainedModel.Load(Fixture(variant));
        model.eval();
        using var _ = torch.no_grad();
        var deberta = (TransformerModel)model.named_children().Single(c => c.name == "deberta").module;
        var input = new ModelInput(Tensor(cases.InputIds), Tensor(cases.AttentionMask), cases.TokenTypeIds is null ? null : Tensor(cases.TokenTypeIds));

        using var all = deberta.forward(input);                  // every query position, [batch, seq, hidden]
        using var first = deberta.FirstTokenState(input);        // the last layer for query 0 only

        all.shape[1].Should().Be(cases.InputIds[0].Length);
        (all.select(1, 0) - first.select(1, 0)).abs().max().item<float>().Should().BeLessThan(1e-5f);
    }

    static Tensor Tensor(long[][] rows) => torch.tensor(rows.SelectMany(r => r).ToArray(), new long[] { rows.Length, rows[0].Length });

    static (double Loss, Dictionary<string, float[]> Grads) Step(bool checkpointing, bool lora)
    {
        lock (TorchRandomLock.Sync)
        {
            torch.manual_seed(3);
            using var model = PretrainedModel.Load(Fixture("v3"));
            if (lora) LoraInjector.Apply(model, new LoraOptions { Rank = 4, Alpha = 8, Dropout = 0.1, TargetModules = new[] { "all-linear" } });
            model.UseGradientCheckpointing(checkpointing);
            model.train();
            using var scope = torch.NewDisposeScope();
            var g = new Generator(5);
            var ids = torch.randint(5, 100, new long[] { 4, 13 }, generator: g);
            var mask = torch.ones(4, 13, ScalarType.Int64);
            mask[1, TensorIndex.Slice(6)] = torch.tensor(0L);
            torch.manual_seed(11);
            var loss = F.cross_entropy(model.forward(new ModelInput(ids, mask)), torch.tensor(new long[] { 0, 1, 2, 1 }));
            loss.backward();
            var grads = model.named_parameters().Where(p => p.parameter.grad is not null)
                .ToDictionary(p => p.name, p => p.parameter.grad!.data<float>().ToArray());
            return (loss.item<float>(), grads);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Checkpointed_layers_give_the_same_loss_and_gradients(bool lora)
    {
        var stored = Step(checkpointing: false, lora);
        var recomputed = Step(checkpointing: true, lora);

        recomputed.Loss.Should().BeApproximately(stored.Loss, 1e-6);
        recomputed.Grads.Keys.Should().BeEquivalentTo(stored.Grads.Keys);
        foreach (var (name, grad) in stored.Grads)
            recomputed.Grads[name].Zip(grad, (a, b) => Math.Abs(a - b)).Max().Should().BeLessThan(1e-5f, name);
        if (!lora)
            stored.Grads.Keys.Should().Contain(new[] { "deberta.encoder.rel_embeddings.weight", "deberta.encoder.LayerNorm.weight" },
                "full fine-tuning reaches the relative-position table through every layer");
        else
            stored.Grads.Keys.Should().Contain("deberta.encoder.layer.0.attention.self.query_proj.lora_B.weight");
    }

    [Fact]
    public void A_tiny_random_model_learns_a_learnable_task()
    {
        var train = SyntheticTask.Make(320, seed: 1);
        var validation = SyntheticTask.Make(100, seed: 2);
        SequenceClassifier model;
        lock (TorchRandomLock.Sync)
        {
            torch.manual_seed(1);
            model = PretrainedModel.Load(Fixture("v3"), numLabels: 2);   // a 2-label classifier replaces the fixture's 3-label one
            LoraInjector.Apply(model, new LoraOptions { Rank = 8, Alpha = 16, Dropout = 0.0, LoraQuery = true, LoraValue = true, LoraMlp = true });
        }
        using (model)
        {
            var trainer = new ClassifierTrainer(model, new TrainingSettings { Epochs = 6, BatchSize = 16, LearningRate = 5e-3, Seed = 7, WarmupFraction = 0.1 }, padTokenId: 0);
            var before = trainer.Evaluate(validation);

            var history = trainer.Train(train, validation);

            history.Epochs.Last().TrainLoss.Should().BeLessThan(history.Epochs.First().TrainLoss * 0.7);
            var after = trainer.Evaluate(validation);
            after.Accuracy.Should().BeGreaterThan(0.9, $"half the examples hold the marker; accuracy before training was {before.Accuracy:P0}");
            after.Loss.Should().BeLessThan(before.Loss);
        }
    }

    [Fact]
    public void A_masked_lm_checkpoint_gets_a_pooler_and_classifier_and_its_pre_training_heads_are_ignored()
    {
        using var dir = new TempDir();
        File.Copy(Path.Combine(Fixture("v3"), "config.json"), dir.File("config.json"));
        var source = SafeTensorsFile.Open(Path.Combine(Fixture("v3"), "model.safetensors"));
        var tensors = source.Entries.Where(e => !e.Name.StartsWith("pooler.") && !e.Name.StartsWith("classifier."))
            .ToDictionary(e => e.Name, e => source.ReadFloat32(e.Name));
        tensors["lm_predictions.lm_head.bias"] = torch.zeros(100);
        tensors["mask_predictions.classifier.weight"] = torch.zeros(1, 24);
        tensors["deberta.embeddings.position_embeddings.weight"] = torch.zeros(64, 24);   // unused: position_biased_input is false
        SafeTensorsWriter.Save(dir.File("model.safetensors"), tensors);
        var log = new List<string>();

        using var model = PretrainedModel.Load(dir.Path, numLabels: 2, log: log.Add);
        var lora = LoraInjector.Apply(model, new LoraOptions { TargetModules = new[] { "query_proj", "value_proj" } });

        model.CreatedModules.Should().Equal("classifier", "pooler");
        log.Should().NotContain(l => l.Contains("Ignored"), "pre-training heads and unused absolute positions are expected in DeBERTa checkpoints");
        lora.SavedModules.Should().BeEquivalentTo("classifier", "pooler");
        lora.AdaptedModules.Should().HaveCount(2 * 3);
    }

    [Theory]
    [InlineData("conv_kernel_size", "3", "conv_kernel_size 3 is not supported")]
    [InlineData("pos_att_type", "\"c2p|p2p\"", "pos_att_type 'p2p' is not supported")]
    [InlineData("norm_rel_ebd", "\"batch_norm\"", "norm_rel_ebd 'batch_norm' is not supported")]
    [InlineData("pooler_hidden_size", "16", "pooler_hidden_size 16 is not supported")]
    [InlineData("pooler_hidden_act", "\"swish\"", "pooler_hidden_act 'swish' is not supported")]
    [InlineData("share_att_key", "\"yes\"", "field 'share_att_key' is not true or false")]
    [InlineData("position_buckets", "128", "position_buckets 128 is not supported with max_relative_positions 64")]
    [InlineData("attention_head_size", "5", "attention_head_size 5 is not supported")]
    public void Unsupported_config_values_are_refused_naming_the_field(string field, string json, string message)
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixture("v3"), "config.json")))!.AsObject();
        config[field] = JsonNode.Parse(json);

        FluentActions.Invoking(() => TransformerConfig.Parse(config, "config.json")).Should().Throw<CheckpointFormatException>()
            .Which.Message.Should().Contain(message);
    }

    [Fact]
    public void The_config_reads_deberta_v3_large()
    {
        var config = TransformerConfig.Load(SharedData.Config("deberta-v3-large.json"));
        var settings = DebertaV2Settings.Of(config);

        config.Family.Should().Be("deberta-v2");
        (config.Tokenizer, config.TakesTokenTypes, config.LayerNormEps, config.PadTokenId).Should().Be((TokenizerKind.FromFiles, false, 1e-7, 0));
        settings.Should().Be(new DebertaV2Settings(RelativeAttention: true, MaxRelativePositions: 512, PositionBuckets: 256,
            ContentToPosition: true, PositionToContent: true, ShareAttentionKey: true, NormalizeRelativeEmbeddings: true,
            PositionBiasedInput: false, EmbeddingSize: 1024, PoolerActivation: "gelu", PoolerDropout: 0));
        (settings.ScaleFactor, settings.AttentionSpan).Should().Be((3, 256));
    }
}
