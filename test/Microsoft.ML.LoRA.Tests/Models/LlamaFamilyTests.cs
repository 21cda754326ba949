using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Diagnostics;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Models.Kernels;
using Microsoft.ML.LoRA.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tests.Models;

/// <summary>
/// The LLaMA family (llama, mistral, qwen2): logits equal those of an independent implementation of Hugging Face's
/// forward pass (Fixtures/llama, made by make_fixtures.py) with and without a PEFT adapter; configs are read with
/// Hugging Face's defaults and what is not supported is refused by name; module names, LoRA targets and adapter files
/// follow Hugging Face and PEFT; the head readout computes what the whole last layer does, sliding window included.
/// </summary>
public class LlamaFamilyTests
{
    public static IEnumerable<object[]> Variants => LlamaFixtures.Variants.Select(v => new object[] { v });

    static LogitsCases Cases(string variant) => LogitsCases.Load(Path.Combine(LlamaFixtures.Folder(variant), "cases.json"));

    [Theory]
    [MemberData(nameof(Variants))]
    public void Base_model_logits_match_the_reference(string variant)
    {
        var cases = Cases(variant);
        using var model = PretrainedModel.Load(LlamaFixtures.Folder(variant));

        var logits = cases.Run(model);

        model.Config.Family.Should().Be("llama");
        model.Config.ModelType.Should().Be(variant);
        cases.AttentionMask.Should().Contain(row => row.Last() == 0, "the cases include right-padded rows");
        LogitsCases.MaxAbsDifference(logits, cases.Logits!).Should().BeLessThan(cases.Tolerance);
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Logits_with_the_peft_adapter_match_the_reference(string variant)
    {
        var cases = Cases(variant);
        using var model = PretrainedModel.Load(LlamaFixtures.Folder(variant));

        var info = PeftAdapter.Load(model, Path.Combine(LlamaFixtures.Folder(variant), "adapter"));
        var logits = cases.Run(model);

        info.AdaptedModules.Should().HaveCount(7 * model.Config.NumLayers, "q, k, v, o, gate, up and down projections of every layer");
        LogitsCases.MaxAbsDifference(logits, cases.LogitsWithAdapter!).Should().BeLessThan(cases.Tolerance);
        LogitsCases.MaxAbsDifference(logits, cases.Logits!).Should().BeGreaterThan(cases.Tolerance, "the adapter changes the output");
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Bfloat16_products_and_int8_scoring_stay_close_to_float32(string variant)
    {
        var cases = Cases(variant);
        using var model = PretrainedModel.Load(LlamaFixtures.Folder(variant));
        PeftAdapter.Load(model, Path.Combine(LlamaFixtures.Folder(variant), "adapter"));
        var fp32 = cases.Run(model);
        double scale = fp32.SelectMany(r => r).Max(v => Math.Abs(v));

        model.UseBFloat16MatMul();
        var bf16 = cases.Run(model);
        model.UseBFloat16MatMul(false);
        model.eval();
        model.QuantizeToInt8();
        var int8 = Int8Scoring.IsAvailable ? cases.Run(model) : fp32;
        model.DropInt8();

        LogitsCases.MaxAbsDifference(bf16, fp32).Should().BeLessThan(0.1 * scale).And.BeGreaterThan(0, "the products ran in bfloat16");
        LogitsCases.MaxAbsDifference(int8, fp32).Should().BeLessThan(0.1 * scale);
        LogitsCases.MaxAbsDifference(cases.Run(model), fp32).Should().Be(0, "back to float32");
    }

    [Fact]
    public void The_checkpoint_loads_every_parameter_and_quietly_ignores_lm_head_and_rotary_buffers()
    {
        var folder = CheckpointFolder.Open(LlamaFixtures.Folder("llama"));
        using var model = ModelFactory.Create(folder.Config, folder.Config.NumLabels);
        using var weights = folder.OpenWeights();
        var log = new List<string>();

        var report = WeightLoader.Load(model, weights, log.Add);

        weights.Names.Should().Contain("lm_head.weight").And.Contain("model.layers.0.self_attn.rotary_emb.inv_freq");
        report.LoadedTensors.Should().Be(model.named_parameters().Count());
        report.IgnoredTensors.Should().BeEmpty();
        report.CreatedModules.Should().BeEmpty("the fixture holds its score layer");
        log.Should().BeEmpty();
        model.named_parameters().Select(p => p.name).Should().BeEquivalentTo(
            weights.Names.Where(n => !n.StartsWith("lm_head.", StringComparison.Ordinal) && !n.EndsWith(".inv_freq", StringComparison.Ordinal)),
            "every parameter carries its Hugging Face name");
    }

    [Theory]
    [InlineData("llama", true, true, true)]     // the fixture turns on attention_bias and mlp_bias
    [InlineData("qwen2", true, false, false)]   // Qwen2Attention: q, k, v biases; o_proj and the MLP none
    [InlineData("mistral", false, false, false)]
    public void Each_model_type_has_biases_where_hugging_faces_modules_have_them(string variant, bool qkv, bool output, bool mlp)
    {
        using var model = PretrainedModel.Load(LlamaFixtures.Folder(variant));
        var names = model.named_parameters().Select(p => p.name).ToHashSet();

        names.Contains("model.layers.0.self_attn.q_proj.bias").Should().Be(qkv);
        names.Contains("model.layers.0.self_attn.v_proj.bias").Should().Be(qkv);
        names.Contains("model.layers.0.self_attn.o_proj.bias").Should().Be(output);
        names.Contains("model.layers.0.mlp.down_proj.bias").Should().Be(mlp);
        names.Should().Contain("score.weight").And.NotContain("score.bias");
    }

    [Fact]
    public void The_llama_2_7b_config_reads_with_the_family_defaults()
    {
        var config = TransformerConfig.Load(SharedData.Config("llama-2-7b.json"));
        var settings = LlamaSettings.Of(config);

        config.Family.Should().Be("llama");
        config.Tokenizer.Should().Be(TokenizerKind.FromFiles);
        config.FanInFanOut.Should().BeFalse();
        config.LayerNormEps.Should().Be(1e-5);
        config.PadTokenId.Should().BeNull("Llama 2's config has no pad token");
        config.EosTokenId.Should().Be(2);
        settings.HeadDim.Should().Be(128);
        settings.KeyValueHeads.Should().Be(32);
        settings.Rope.Should().Be(new LlamaRope("default", 10000.0));
        settings.SlidingWindows.Should().HaveCount(32).And.OnlyContain(w => w == null);
        (settings.QueryKeyValueBias || settings.OutputBias || settings.MlpBias).Should().BeFalse();
    }

    [Fact]
    public void A_list_of_end_tokens_reads_as_its_first()
    {
        var config = LlamaFixtures.Parse(LlamaFixtures.TinyConfig("llama", ("eos_token_id", new JsonArray(128001, 128008, 128009))));

        config.EosTokenId.Should().Be(128001);
    }

    [Theory]
    [InlineData("""{"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}""", "rope_scaling type 'yarn'")]
    [InlineData("""{"rope_type": "dynamic", "factor": 2.0}""", "rope_scaling type 'dynamic'")]
    [InlineData("""{"rope_type": "longrope", "short_factor": [1], "long_factor": [1]}""", "rope_scaling type 'longrope'")]
    [InlineData("""{"factor": 2.0}""", "rope_scaling names no 'rope_type'")]
    [InlineData("""{"rope_type": "llama3", "factor": 8.0}""", "rope_scaling of type 'llama3' lacks 'low_freq_factor'")]
    public void Unsupported_rope_scaling_is_refused_naming_the_field_and_the_value(string scaling, string message)
    {
        var json = LlamaFixtures.TinyConfig("llama", ("rope_scaling", JsonNode.Parse(scaling)));

        var act = () => LlamaFixtures.Parse(json);

        act.Should().Throw<CheckpointFormatException>().WithMessage($"*{message}*");
    }

    [Fact]
    public void Transformers_5_rope_parameters_are_read_and_checked_too()
    {
        var theta = LlamaFixtures.TinyConfig("llama", ("rope_parameters", JsonNode.Parse("""{"rope_type": "default", "rope_theta": 500000.0}""")));
        var yarn = LlamaFixtures.TinyConfig("llama", ("rope_parameters", JsonNode.Parse("""{"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0}""")));

        LlamaSettings.Of(LlamaFixtures.Parse(theta)).Rope.Should().Be(new LlamaRope("default", 500000.0));
        ((Action)(() => LlamaFixtures.Parse(yarn))).Should().Throw<CheckpointFormatException>().WithMessage("*rope_parameters type 'yarn'*");
    }

    [Fact]
    public void A_hidden_activation_other_than_silu_is_refused_naming_the_field()
    {
        var act = () => LlamaFixtures.Parse(LlamaFixtures.TinyConfig("llama", ("hidden_act", "gelu")));

        act.Should().Throw<CheckpointFormatException>().WithMessage("*hidden_act 'gelu'*silu*");
    }

    [Fact]
    public void Key_value_heads_that_do_not_divide_the_heads_are_refused()
    {
        var act = () => LlamaFixtures.Parse(LlamaFixtures.TinyConfig("llama", ("num_key_value_heads", 3)));

        act.Should().Throw<CheckpointFormatException>().WithMessage("*num_key_value_heads 3*");
    }

    [Fact]
    public void Sliding_windows_follow_mistral_and_qwen2_configs()
    {
        IReadOnlyList<int?> Windows(string type, params (string, JsonNode?)[] fields) =>
            LlamaSettings.Of(LlamaFixtures.Parse(LlamaFixtures.TinyConfig(type, fields))).SlidingWindows;

        Windows("mistral").Should().Equal(4096, 4096);                                    // MistralConfig's default
        Windows("mistral", ("sliding_window", null)).Should().Equal(new int?[] { null, null });
        Windows("mistral", ("sliding_window", 8)).Should().Equal(8, 8);
        Windows("llama", ("sliding_window", 8)).Should().Equal(new int?[] { null, null });                // LlamaModel has none
        Windows("qwen2", ("sliding_window", 8)).Should().Equal(new int?[] { null, null });                // use_sliding_window defaults to false
        Windows("qwen2", ("use_sliding_window", true), ("sliding_window", 8), ("max_window_layers", 1)).Should().Equal(null, 8);
        Windows("qwen2", ("use_sliding_window", true), ("sliding_window", 8),
            ("layer_types", new JsonArray("sliding_attention", "full_attention"))).Should().Equal(8, null);
    }

    [Fact]
    public void An_explicit_head_dim_sizes_the_projections()
    {
        using var model = PretrainedModel.Load(LlamaFixtures.Folder("mistral"));   // head_dim 12, hidden 32, 4 heads, 2 key/value heads
        var shapes = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);

        shapes["model.layers.0.self_attn.q_proj.weight"].Should().Equal(48, 32);
        shapes["model.layers.0.self_attn.k_proj.weight"].Should().Equal(24, 32);
        shapes["model.layers.0.self_attn.o_proj.weight"].Should().Equal(32, 48);
    }

    [Fact]
    public void The_lora_switches_mean_the_projections_of_their_role_and_all_linear_leaves_out_the_score_head()
    {
        IReadOnlyList<string> Adapted(LoraOptions options)
        {
            using var model = PretrainedModel.Load(LlamaFixtures.Folder("qwen2"));
            return LoraInjector.Apply(model, options).AdaptedModules;
        }

        Adapted(new LoraOptions { LoraQuery = true, LoraValue = true }).Should().Equal(
            "model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj", "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj");
        Adapted(new LoraOptions { LoraMlp = true }).Should().OnlyContain(n => Regex.IsMatch(n, @"\.mlp\.(gate|up|down)_proj$")).And.HaveCount(6);
        Adapted(new LoraOptions { LoraProjection = true }).Should().OnlyContain(n => n.EndsWith(".self_attn.o_proj")).And.HaveCount(2);
        Adapted(new LoraOptions { LoraHead = true }).Should().Equal("score");
        var allLinear = Adapted(new LoraOptions { TargetModules = new[] { "all-linear" } });
        allLinear.Should().HaveCount(14).And.NotContain("score");
        Adapted(new LoraOptions()).Should().BeEquivalentTo(allLinear, "the default adapts every linear layer of the decoder layers");
    }

    [Fact]
    public void Last_layers_fine_tuning_trains_the_last_decoder_layer_the_final_norm_and_the_score_head()
    {
        using var model = PretrainedModel.Load(LlamaFixtures.Folder("llama"));

        var report = FineTuningSetup.Apply(model, FineTuning.LastLayers(1), new LoraOptions());

        report.TrainedLayers.Should().Equal(1);
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToList();
        trainable.Should().Contain("model.layers.1.self_attn.q_proj.weight").And.Contain("model.layers.1.mlp.down_proj.bias")
            .And.Contain("model.norm.weight").And.Contain("score.weight");
        trainable.Should().NotContain(n => n.StartsWith("model.layers.0.") || n.StartsWith("model.embed_tokens."));
    }

    [Fact]
    public void A_fitted_adapter_saves_as_peft_files_that_load_back_to_the_same_logits()
    {
        using var dir = new TempDir();
        var cases = Cases("mistral");
        float[][] expected;
        using (var model = PretrainedModel.Load(LlamaFixtures.Folder("mistral")))
        {
            var options = new LoraOptions { Rank = 4, Alpha = 8, TargetModules = new[] { "q_proj", "v_proj", "down_proj" } };
            LoraInjector.Apply(model, options);
            using (torch.no_grad())
                foreach (var layer in LoraInjector.LinearLayers(model).Values.Where(l => l.HasAdapter))
                    layer.LoraB.normal_(0, 0.2, generator: new Generator(3));   // as if trained
            expected = cases.Run(model);
            PeftAdapter.Save(model, dir.Path, options);
        }
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, PeftAdapter.ConfigFile)))!;
        var file = SafeTensorsFile.Open(Path.Combine(dir.Path, PeftAdapter.WeightsFile));

        using var reloaded = PretrainedModel.Load(LlamaFixtures.Folder("mistral"));
        var info = PeftAdapter.Load(reloaded, dir.Path);

        config["fan_in_fan_out"]!.GetValue<bool>().Should().BeFalse();
        config["target_modules"]!.AsArray().Select(t => t!.GetValue<string>()).Should().BeEquivalentTo("q_proj", "v_proj", "down_proj");
        file.Entries.Select(e => e.Name).Should().Contain("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
            .And.Contain("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight")
            .And.Contain("base_model.model.score.weight", "the trained head travels with the adapter");
        info.AdaptedModules.Should().HaveCount(6);
        LogitsCases.MaxAbsDifference(cases.Run(reloaded), expected).Should().BeLessThan(1e-6);
        LogitsCases.MaxAbsDifference(expected, cases.Logits!).Should().BeGreaterThan(1e-3, "the adapter changes the output");
    }

    /// <summary>Row 0 all real, row 1 right-padded after 6 tokens, row 2 left-padded (3 pads), row 3 a single token.</summary>
    static Tensor MixedPadding(int batch, int seq)
    {
        var mask = torch.ones(batch, seq, ScalarType.Int64);
        mask[1, TensorIndex.Slice(6)] = torch.tensor(0L);
        mask[2, TensorIndex.Slice(0, 3)] = torch.tensor(0L);
        mask[3, TensorIndex.Slice(1)] = torch.tensor(0L);
        return mask;
    }

    public static IEnumerable<object[]> ReadoutConfigs => new[]
    {
        new object[] { "mistral, window 3", LlamaFixtures.TinyConfig("mistral", ("sliding_window", 3)) },
        new object[] { "qwen2, the second layer windowed", LlamaFixtures.TinyConfig("qwen2", ("use_sliding_window", true), ("sliding_window", 3), ("max_window_layers", 1)) },
        new object[] { "llama, llama3 rope", LlamaFixtures.TinyConfig("llama", ("rope_scaling", JsonNode.Parse(
            """{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}"""))) },
    };

    /// <summary>
    /// The last layer run for each row's last real token only (HeadReadout) gives that row, and every parameter's
    /// gradient through it, as the whole layer does: the read row's rotary position and sliding window included, with
    /// left and right padding.
    /// </summary>
    [Theory]
    [MemberData(nameof(ReadoutConfigs))]
    public void The_last_real_token_state_and_its_gradients_equal_those_of_the_whole_last_layer(string name, JsonObject json)
    {
        const int batch = 4, seq = 10;
        var config = LlamaFixtures.Parse(json);
        LlamaModel model;
        lock (TorchRandomLock.Sync)
        {
            torch.manual_seed(1);
            model = new LlamaModel(config);
            foreach (var (_, layer) in LoraInjector.LinearLayers(model))
            {
                layer.AttachAdapter(4, 8, 0.0, LoraScaling.AlphaOverRank, LoraInit.KaimingUniform);
                using (torch.no_grad()) layer.LoraB.normal_(0, 0.5, generator: new Generator(5));
            }
        }
        using var _ = model;
        model.eval();
        var ids = torch.randint(5, config.VocabSize, new long[] { batch, seq }, generator: new Generator(3));
        var mask = MixedPadding(batch, seq);
        var input = new ModelInput(ids, mask);
        var lastReal = torch.tensor(new long[] { seq - 1, 5, seq - 1, 0 }).view(batch, 1, 1).expand(-1, 1, config.HiddenSize);

        (float[] Row, Dictionary<string, float[]> Grads) Run(Func<Tensor> readRow)
        {
            model.zero_grad();
            var row = readRow();
            var weights = torch.randn(row.shape, generator: new Generator(7));
            row.mul(weights).sum().backward();
            return (row.detach().data<float>().ToArray(),
                model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.data<float>().ToArray()));
        }

        var whole = Run(() => model.forward(input).gather(1, lastReal));
        var readout = Run(() =>
        {
            using var read = HeadReadout.LastRealToken(mask);
            return model.Forward(input, read);
        });

        readout.Row.Zip(whole.Row, (a, b) => Math.Abs(a - b)).Max().Should().BeLessThan(1e-5f, name);
        readout.Grads.Keys.Should().BeEquivalentTo(whole.Grads.Keys);
        foreach (var (parameter, grad) in whole.Grads)
        {
            float scale = Math.Max(1f, grad.Max(Math.Abs));
            readout.Grads[parameter].Zip(grad, (a, b) => Math.Abs(a - b)).Max().Should().BeLessThan(1e-5f * scale, $"{name}: {parameter}");
        }
    }

    /// <summary>
    /// A training step with checkpointed layers (recomputed in the backward pass, the read row's position and window
    /// included) gives the loss and gradients of one that keeps its activations, attention dropout included.
    /// </summary>
    [Fact]
    public void Checkpointed_layers_give_the_gradients_of_stored_activations()
    {
        (double Loss, Dictionary<string, float[]> Grads) Step(bool checkpointing)
        {
            lock (TorchRandomLock.Sync)
            {
                torch.manual_seed(3);
                var config = LlamaFixtures.Parse(LlamaFixtures.TinyConfig("mistral", ("sliding_window", 3), ("attention_dropout", 0.1)));
                using var model = ModelFactory.Create(config, numLabels: 3);
                LoraInjector.Apply(model, new LoraOptions { Rank = 4, Alpha = 8, Dropout = 0.1, TargetModules = new[] { "all-linear" } });
                model.UseGradientCheckpointing(checkpointing);
                model.train();
                using var scope = torch.NewDisposeScope();
                var ids = torch.randint(5, config.VocabSize, new long[] { 4, 9 }, generator: new Generator(5));
                var mask = torch.ones(4, 9, ScalarType.Int64);
                mask[1, TensorIndex.Slice(6)] = torch.tensor(0L);
                var labels = torch.tensor(new long[] { 0, 1, 2, 1 });
                torch.manual_seed(11);
                var loss = torch.nn.functional.cross_entropy(model.forward(new ModelInput(ids, mask)), labels);
                loss.backward();
                return (loss.item<float>(), model.named_parameters().Where(p => p.parameter.grad is not null)
                    .ToDictionary(p => p.name, p => p.parameter.grad!.data<float>().ToArray()));
            }
        }

        var stored = Step(checkpointing: false);
        var recomputed = Step(checkpointing: true);

        recomputed.Loss.Should().BeApproximately(stored.Loss, 1e-6);
        recomputed.Grads.Keys.Should().BeEquivalentTo(stored.Grads.Keys).And.Contain("model.layers.0.self_attn.q_proj.lora_A.weight");
        foreach (var (name, grad) in stored.Grads)
            recomputed.Grads[name].Zip(grad, (a, b) => Math.Abs(a - b)).Max().Should().BeLessThan(1e-5f, name);
    }

    [Fact]
    public void A_sliding_window_shows_a_query_only_the_keys_fewer_than_window_positions_back()
    {
        using var windowed = CausalMask.Windowed(null, null, keys: 5, window: 2, torch.CPU)!;
        using var rows = torch.tensor(new long[] { 4, 1 }).view(2, 1);
        using var readMask = torch.ones(new long[] { 2, 1, 1, 5 }, ScalarType.Bool);
        using var readWindowed = CausalMask.Windowed(readMask, rows, keys: 5, window: 2, torch.CPU)!;

        windowed.shape.Should().Equal(1, 1, 5, 5);
        windowed.to_type(ScalarType.Int64).data<long>().ToArray().Should().Equal(
            1, 0, 0, 0, 0,
            1, 1, 0, 0, 0,
            0, 1, 1, 0, 0,
            0, 0, 1, 1, 0,
            0, 0, 0, 1, 1);
        readWindowed.to_type(ScalarType.Int64).data<long>().ToArray().Should().Equal(0, 0, 0, 1, 1, 1, 1, 0, 0, 0);
        CausalMask.Windowed(null, null, keys: 4, window: 4, torch.CPU).Should().BeNull("no query is 4 or more positions past a key");
    }

    [Fact]
    public void Kernels_name_no_llama_family_type()
    {
        var kernels = Directory.EnumerateFiles(Path.Combine(SharedData.RepoRoot, "src", "Microsoft.ML.LoRA", "Models", "Kernels"), "*.cs");
        var named = kernels.Where(f => Regex.IsMatch(
            string.Join('\n', File.ReadLines(f).Select(l => Regex.Replace(l, @"//.*$", ""))), @"\b(Llama|Mistral|Qwen2)\w*\b")).ToList();

        named.Should().BeEmpty("kernels serve every family and know none of them");
    }
}
