using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Diagnostics;
using Microsoft.ML.LoRA.Inference;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Inference;

/// <summary>
/// Adapter folders over the DistilBERT reference fixture (3 labels): its own PEFT adapter, a DoRA adapter with its own
/// head, and a plain one on other layers with another rank per layer, rsLoRA, trained biases and its own head.
/// </summary>
public sealed class DistilBertAdapterFolders : IDisposable
{
    readonly TempDir _dir = new();

    public DistilBertAdapterFolders()
    {
        Dora = RandomAdapters.Write(Base, _dir.File("dora"),
            new LoraOptions { UseDora = true, Rank = 2, Alpha = 4, LoraQuery = true, LoraValue = true, Dropout = 0 }, seed: 1);
        Wide = RandomAdapters.Write(Base, _dir.File("wide"), new LoraOptions
        {
            Rank = 6, Alpha = 3, LoraKey = true, LoraProjection = true, LoraMlp = true, RankPattern = new Dictionary<string, int> { ["lin1"] = 3 },
            Scaling = LoraScaling.RsLora, Bias = LoraBias.All, Dropout = 0,
        }, seed: 2);
    }

    /// <summary>The base model: the DistilBERT fixture.</summary>
    public static string Base => SharedData.Fixture("distilbert");

    /// <summary>The fixture's own adapter, written by PEFT (q_lin and v_lin, rank 4, no saved modules).</summary>
    public static string Peft => Path.Combine(Base, "adapter");

    public string Dora { get; }

    public string Wide { get; }

    /// <summary>A folder for adapters a test writes itself.</summary>
    public string Scratch(string name) => _dir.File(name);

    public void Dispose() => _dir.Dispose();
}

/// <summary>
/// Many adapters on one base model, as PEFT serves them: each adapter scores through the set as it scores loaded alone,
/// switching between them and mixing them in one batch change nothing about any row's scores, "__base__" is the base
/// model alone, and adapters that cannot share the base are refused before they change anything.
/// </summary>
public class LoraAdapterSetTests(DistilBertAdapterFolders folders) : IClassFixture<DistilBertAdapterFolders>
{
    static readonly LogitsCases Cases = LogitsCases.Load(Path.Combine(DistilBertAdapterFolders.Base, "cases.json"));

    /// <summary>The fixture's cases, and the same ids reversed: rows of several lengths.</summary>
    static readonly string[] Texts = TokenIdsEncoder.Texts(Cases)
        .Concat(TokenIdsEncoder.Texts(Cases).Select(t => string.Join(' ', t.Split(' ').Reverse()))).ToArray();

    static LoraAdapterSet NewSet() => new(PretrainedModel.Load(DistilBertAdapterFolders.Base), new TokenIdsEncoder(), batchSize: 3);

    LoraAdapterSet SetOfThree()
    {
        var set = NewSet();
        set.Add("peft", DistilBertAdapterFolders.Peft);
        set.Add("dora", folders.Dora);
        set.Add("wide", folders.Wide);
        return set;
    }

    /// <summary>The usual way: a fresh base model, the adapter loaded into it with PeftAdapter.Load (none: the base alone).</summary>
    static float[][] LoadedAlone(string? adapterFolder, IReadOnlyList<string> texts)
    {
        using var model = PretrainedModel.Load(DistilBertAdapterFolders.Base);
        if (adapterFolder is not null) PeftAdapter.Load(model, adapterFolder);
        return new ClassifierScorer(model, new TokenIdsEncoder(), batchSize: 3).Logits(texts.ToArray<string?>());
    }

    string FolderOf(string name) => name switch { "peft" => DistilBertAdapterFolders.Peft, "dora" => folders.Dora, _ => folders.Wide };

    [Theory]
    [InlineData("peft")]
    [InlineData("dora")]
    [InlineData("wide")]
    public void An_adapter_scores_through_the_set_as_it_scores_loaded_alone(string name)
    {
        using var set = SetOfThree();

        var logits = set.Logits(name, Texts);

        LogitsCases.MaxAbsDifference(logits, LoadedAlone(FolderOf(name), Texts)).Should().BeLessThan(1e-5);
        LogitsCases.MaxAbsDifference(logits, LoadedAlone(null, Texts)).Should().BeGreaterThan(1e-3, "the adapter changes the scores");
    }

    [Fact]
    public void Over_an_NF4_base_each_adapter_scores_as_it_does_loaded_alone_over_the_same_quantized_base()
    {
        var nf4 = new Microsoft.ML.LoRA.Models.Quantization.QuantizedBase(Microsoft.ML.LoRA.Models.Quantization.BaseQuantization.Nf4, DoubleQuantization: true);
        using var set = new LoraAdapterSet(PretrainedModel.Load(DistilBertAdapterFolders.Base, quantization: nf4), new TokenIdsEncoder(), batchSize: 3);
        set.Add("peft", DistilBertAdapterFolders.Peft);
        set.Add("dora", folders.Dora);

        foreach (var name in new[] { "peft", "dora", "peft" })
        {
            using var alone = PretrainedModel.Load(DistilBertAdapterFolders.Base, quantization: nf4);
            PeftAdapter.Load(alone, FolderOf(name));
            var expected = new ClassifierScorer(alone, new TokenIdsEncoder(), batchSize: 3).Logits(Texts.ToArray<string?>());
            LogitsCases.MaxAbsDifference(set.Logits(name, Texts), expected).Should().BeLessThan(1e-5, name);
        }
        LogitsCases.MaxAbsDifference(set.Logits("peft", Texts), LoadedAlone(DistilBertAdapterFolders.Peft, Texts))
            .Should().BeGreaterThan(0, "the base is NF4, not the fp32 one");
    }

    [Fact]
    public void The_fixtures_peft_adapter_reproduces_its_reference_logits_in_the_set()
    {
        using var set = SetOfThree();
        set.Use("wide");

        set.Use("peft");
        var logits = set.Logits(Texts.Take(Cases.InputIds.Length).ToArray());

        LogitsCases.MaxAbsDifference(logits, Cases.LogitsWithAdapter!).Should().BeLessThan(Cases.Tolerance);
    }

    [Fact]
    public void Switching_away_and_back_gives_the_first_adapters_scores_again()
    {
        using var set = SetOfThree();
        set.Use("dora");
        var first = set.Logits(Texts);

        set.Use("wide");
        var other = set.Logits(Texts);
        set.Use("dora");
        var again = set.Logits(Texts);

        set.ActiveAdapter.Should().Be("dora");
        LogitsCases.MaxAbsDifference(again, first).Should().Be(0);
        LogitsCases.MaxAbsDifference(other, first).Should().BeGreaterThan(1e-3);
    }

    [Fact]
    public void The_base_name_scores_with_the_base_model_alone_even_after_adapters_that_replace_its_head_and_biases()
    {
        using var set = SetOfThree();
        set.Logits("wide", Texts);   // replaces the head and every bias while it is on

        var logits = set.Logits(LoraAdapterSet.BaseModelName, Texts);

        LogitsCases.MaxAbsDifference(logits, LoadedAlone(null, Texts)).Should().BeLessThan(1e-5);
        LogitsCases.MaxAbsDifference(logits.Take(Cases.InputIds.Length).ToArray(), Cases.Logits!).Should().BeLessThan(Cases.Tolerance);
    }

    [Fact]
    public void A_new_set_scores_with_the_base_model_until_an_adapter_is_chosen()
    {
        using var set = SetOfThree();

        set.ActiveAdapter.Should().Be(LoraAdapterSet.BaseModelName);
        LogitsCases.MaxAbsDifference(set.Logits(Texts), LoadedAlone(null, Texts)).Should().BeLessThan(1e-5);
    }

    [Fact]
    public void A_mixed_batch_scores_each_row_with_its_own_adapter_and_keeps_the_row_order()
    {
        using var set = SetOfThree();
        string[] choices = { "wide", LoraAdapterSet.BaseModelName, "peft", "dora" };
        var names = Texts.Select((_, i) => choices[(i * 3 + 1) % choices.Length]).ToArray();

        var mixed = set.LogitsPerRow(names, Texts);

        var expected = Texts.Select((text, i) => set.Logits(names[i], new[] { text })[0]).ToArray();
        LogitsCases.MaxAbsDifference(mixed, expected).Should().BeLessThan(1e-5);
        names.Distinct().Should().HaveCount(choices.Length, "every adapter and the base model take part");
    }

    [Fact]
    public void A_mixed_batch_leaves_the_active_adapter_for_calls_that_name_none()
    {
        using var set = SetOfThree();
        set.Use("peft");
        var before = set.Logits(Texts);

        set.LogitsPerRow(Texts.Select((_, i) => i % 2 == 0 ? "dora" : "wide").ToArray(), Texts);

        set.ActiveAdapter.Should().Be("peft");
        LogitsCases.MaxAbsDifference(set.Logits(Texts), before).Should().Be(0);
    }

    [Fact]
    public void A_row_naming_an_adapter_the_set_lacks_fails_before_any_row_is_scored()
    {
        using var set = SetOfThree();
        var names = Texts.Select((_, i) => i == 5 ? "missing" : "peft").ToArray();

        var act = () => set.LogitsPerRow(names, Texts);

        act.Should().Throw<ArgumentException>().WithMessage("*row 5*no adapter named 'missing'*'peft', 'dora', 'wide'*");
    }

    [Fact]
    public void Removing_an_adapter_makes_its_name_fail_and_leaves_the_others_as_they_were()
    {
        using var set = SetOfThree();
        set.Use("dora");
        var peft = set.Logits("peft", Texts);

        set.Remove("dora");

        set.Names.Should().Equal("peft", "wide");
        set.Contains("dora").Should().BeFalse();
        set.ActiveAdapter.Should().Be(LoraAdapterSet.BaseModelName, "removing the active adapter leaves the base model active");
        set.Invoking(s => s.Logits("dora", Texts)).Should().Throw<ArgumentException>().WithMessage("*no adapter named 'dora'*");
        set.Invoking(s => s.Use("dora")).Should().Throw<ArgumentException>().WithMessage("*no adapter named 'dora'*");
        set.Invoking(s => s.Remove("dora")).Should().Throw<ArgumentException>();
        LogitsCases.MaxAbsDifference(set.Logits(Texts), LoadedAlone(null, Texts)).Should().BeLessThan(1e-5);
        LogitsCases.MaxAbsDifference(set.Logits("peft", Texts), peft).Should().Be(0);
    }

    [Fact]
    public void A_removed_name_can_be_added_again_from_another_folder()
    {
        using var set = SetOfThree();
        set.Remove("wide");

        set.Add("wide", folders.Dora);

        LogitsCases.MaxAbsDifference(set.Logits("wide", Texts), LoadedAlone(folders.Dora, Texts)).Should().BeLessThan(1e-5);
    }

    [Fact]
    public void Adding_a_name_twice_fails_and_keeps_the_first_adapter()
    {
        using var set = SetOfThree();

        var act = () => set.Add("peft", folders.Dora);

        act.Should().Throw<ArgumentException>().WithMessage("*already holds an adapter named 'peft'*");
        LogitsCases.MaxAbsDifference(set.Logits("peft", Texts), LoadedAlone(DistilBertAdapterFolders.Peft, Texts)).Should().BeLessThan(1e-5);
    }

    [Fact]
    public void The_base_models_name_is_not_an_adapter_name()
    {
        using var set = NewSet();

        set.Invoking(s => s.Add(LoraAdapterSet.BaseModelName, folders.Dora)).Should().Throw<ArgumentException>().WithMessage("*__base__*");
        set.Names.Should().BeEmpty();
    }

    [Fact]
    public void An_adapter_trained_on_another_base_shape_is_refused_and_the_set_stays_usable()
    {
        using var set = SetOfThree();
        set.Use("dora");
        var before = set.Logits(Texts);
        var otherBase = TinyCheckpoint.Create("distilbert", folders.Scratch("wider-base"), hidden: 64);
        var wider = RandomAdapters.Write(otherBase, folders.Scratch("wider-adapter"),
            new LoraOptions { Rank = 2, LoraQuery = true, LoraValue = true, Dropout = 0 }, seed: 3, numLabels: 3);

        var act = () => set.Add("wider", wider);

        act.Should().Throw<CheckpointFormatException>().WithMessage("*another base model*");
        set.Names.Should().Equal("peft", "dora", "wide");
        set.ActiveAdapter.Should().Be("dora");
        LogitsCases.MaxAbsDifference(set.Logits(Texts), before).Should().Be(0);
        LogitsCases.MaxAbsDifference(set.Logits("wide", Texts), LoadedAlone(folders.Wide, Texts)).Should().BeLessThan(1e-5);
        LogitsCases.MaxAbsDifference(set.Logits(LoraAdapterSet.BaseModelName, Texts), LoadedAlone(null, Texts)).Should().BeLessThan(1e-5);
    }

    [Fact]
    public void An_adapter_that_fails_half_way_through_loading_leaves_the_set_as_it_was()
    {
        // The fixture's adapter with one layer's factors of another width and a saved bias: its file listing shows no
        // conflict, so loading starts, writes the bias and attaches the first layers before it finds the misfit.
        using var set = SetOfThree();
        set.Use("wide");
        var before = set.Logits(Texts);
        var folder = folders.Scratch("half-fitting");
        Directory.CreateDirectory(folder);
        var tensors = SafeTensorsFile.Open(Path.Combine(DistilBertAdapterFolders.Peft, PeftAdapter.WeightsFile)).ReadAllFloat32();
        tensors["base_model.model.distilbert.transformer.layer.1.attention.v_lin.lora_A.weight"] = global::TorchSharp.torch.ones(4, 64);
        tensors["base_model.model.pre_classifier.bias"] = global::TorchSharp.torch.ones(32);
        SafeTensorsWriter.Save(Path.Combine(folder, PeftAdapter.WeightsFile), tensors);
        File.Copy(Path.Combine(DistilBertAdapterFolders.Peft, PeftAdapter.ConfigFile), Path.Combine(folder, PeftAdapter.ConfigFile));

        var act = () => set.Add("half", folder);

        act.Should().Throw<CheckpointFormatException>().WithMessage("*layer.1.attention.v_lin*do not fit*");
        set.Names.Should().Equal("peft", "dora", "wide");
        LogitsCases.MaxAbsDifference(set.Logits(Texts), before).Should().Be(0);
        LogitsCases.MaxAbsDifference(set.Logits("peft", Texts), LoadedAlone(DistilBertAdapterFolders.Peft, Texts)).Should().BeLessThan(1e-5);
        LogitsCases.MaxAbsDifference(set.Logits(LoraAdapterSet.BaseModelName, Texts), LoadedAlone(null, Texts)).Should().BeLessThan(1e-5);
    }

    [Fact]
    public void An_adapter_whose_head_scores_another_number_of_labels_is_refused_naming_the_labels()
    {
        using var set = SetOfThree();
        var twoLabels = RandomAdapters.Write(DistilBertAdapterFolders.Base, folders.Scratch("two-labels"),
            new LoraOptions { Rank = 2, LoraQuery = true, LoraValue = true, Dropout = 0 }, seed: 5, numLabels: 2);

        var act = () => set.Add("two", twoLabels);

        act.Should().Throw<CheckpointFormatException>().WithMessage("*scores 2 labels, the set's base model 3*numLabels: 2*");
        set.Names.Should().Equal("peft", "dora", "wide");
    }

    [Theory]
    [InlineData(LoraInit.Pissa, "pissa")]
    [InlineData(LoraInit.Olora, "olora")]
    public void Adapters_whose_initialisation_changed_the_base_weight_are_refused_before_they_touch_it(LoraInit init, string configValue)
    {
        using var set = SetOfThree();
        var folder = RandomAdapters.Write(DistilBertAdapterFolders.Base, folders.Scratch("residual-" + configValue),
            new LoraOptions { Rank = 2, LoraQuery = true, LoraValue = true, Dropout = 0, Init = init }, seed: 6);

        var act = () => set.Add("residual", folder);

        act.Should().Throw<NotSupportedException>().WithMessage($"*init_lora_weights = \"{configValue}\"*cannot share a base model*");
        set.Names.Should().Equal("peft", "dora", "wide");
        LogitsCases.MaxAbsDifference(set.Logits(LoraAdapterSet.BaseModelName, Texts), LoadedAlone(null, Texts)).Should().BeLessThan(1e-5);
    }

    [Theory]
    [InlineData("loftq")]
    [InlineData("pissa_niter_4")]
    [InlineData("corda")]
    public void Peft_initialisations_that_leave_a_changed_base_behind_are_refused(string configValue)
    {
        using var set = SetOfThree();
        var folder = folders.Scratch("init-" + configValue);
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(DistilBertAdapterFolders.Peft, PeftAdapter.WeightsFile), Path.Combine(folder, PeftAdapter.WeightsFile));
        var config = File.ReadAllText(Path.Combine(DistilBertAdapterFolders.Peft, PeftAdapter.ConfigFile))
            .Replace("\"init_lora_weights\": true", $"\"init_lora_weights\": \"{configValue}\"");
        File.WriteAllText(Path.Combine(folder, PeftAdapter.ConfigFile), config);

        var act = () => set.Add("changed-base", folder);

        act.Should().Throw<NotSupportedException>().WithMessage($"*\"{configValue}\"*");
        set.Names.Should().Equal("peft", "dora", "wide");
    }

    [Fact]
    public void An_adapter_costs_its_own_factors_and_saved_modules_and_no_copy_of_the_base()
    {
        using var set = SetOfThree();
        using var model = PretrainedModel.Load(DistilBertAdapterFolders.Base);
        long baseBytes = model.parameters().Sum(p => p.numel() * 4);
        long head = model.named_parameters().Where(p => p.name.StartsWith("pre_classifier.") || p.name.StartsWith("classifier.")).Sum(p => p.parameter.numel() * 4);
        // q_lin and v_lin of 2 layers: A [r, 32] and B [32, r], and DoRA's magnitude [32] for each.
        long factors(int rank) => 2 * 2 * (rank * 32 + 32 * rank) * 4L;

        set.AdapterBytes("peft").Should().Be(factors(4), "PEFT's adapter saves no modules");
        set.AdapterBytes("dora").Should().Be(factors(2) + 2 * 2 * 32 * 4 + head);
        set.AdapterBytes("wide").Should().BeLessThan(baseBytes / 2);
    }

    [Fact]
    public void Scoring_from_several_threads_gives_each_call_its_own_adapters_scores()
    {
        using var set = SetOfThree();
        string[] names = { "peft", "dora", "wide", LoraAdapterSet.BaseModelName };
        var expected = names.ToDictionary(n => n, n => set.Logits(n, Texts));
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();

        Parallel.For(0, 16, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            var name = names[i % names.Length];
            if (i % 3 == 0) set.Use(names[(i + 1) % names.Length]);
            var logits = i % 2 == 0 ? set.Logits(name, Texts) : set.LogitsPerRow(Texts.Select(_ => name).ToArray(), Texts);
            if (LogitsCases.MaxAbsDifference(logits, expected[name]) > 1e-5) failures.Add($"call {i} ({name})");
        });

        failures.Should().BeEmpty();
    }

    /// <summary>A copy of the fixture's PEFT adapter whose weights are all NaN.</summary>
    string NanAdapter(string name)
    {
        var folder = folders.Scratch(name);
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(DistilBertAdapterFolders.Peft, PeftAdapter.ConfigFile), Path.Combine(folder, PeftAdapter.ConfigFile), overwrite: true);
        var tensors = SafeTensorsFile.Open(Path.Combine(DistilBertAdapterFolders.Peft, PeftAdapter.WeightsFile)).ReadAllFloat32();
        foreach (var t in tensors.Values) t.fill_(float.NaN);
        SafeTensorsWriter.Save(Path.Combine(folder, PeftAdapter.WeightsFile), tensors);
        foreach (var t in tensors.Values) t.Dispose();
        return folder;
    }

    [Fact]
    public void A_non_finite_score_in_a_mixed_batch_names_the_first_such_row_of_the_call()
    {
        using var set = SetOfThree();
        set.Add("nan", NanAdapter("nan"));
        set.Add("nan2", NanAdapter("nan2"));
        set.Use("nan");   // the adapter carried now is scored first, so its row 3 fails before row 1 of "nan2"
        var names = new[] { "peft", "nan2", "dora", "nan", "wide" };

        var act = () => set.LogitsPerRow(names, Texts.Take(names.Length).ToArray());

        act.Should().Throw<NonFiniteScoreException>().Which.Example.Should().Be(1);
    }

    [Fact]
    public void A_disposed_set_refuses_every_call()
    {
        var set = SetOfThree();
        set.Dispose();

        set.Invoking(s => s.Logits("peft", Texts)).Should().Throw<ObjectDisposedException>();
        set.Invoking(s => s.Add("again", folders.Dora)).Should().Throw<ObjectDisposedException>();
        set.Invoking(s => s.Use("peft")).Should().Throw<ObjectDisposedException>();
        set.Dispose();
    }

    [Fact]
    public void A_model_that_already_carries_adapters_cannot_be_a_sets_base()
    {
        using var model = PretrainedModel.Load(DistilBertAdapterFolders.Base);
        PeftAdapter.Load(model, DistilBertAdapterFolders.Peft);

        var act = () => new LoraAdapterSet(model, new TokenIdsEncoder());

        act.Should().Throw<ArgumentException>().WithMessage("*already carries adapters*");
    }
}
