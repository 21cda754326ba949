using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Persistence;

/// <summary>One file holds the whole pipeline; loading it gives identical predictions and refuses a changed base model.</summary>
public class LoraModelFileTests(TrainedSpamPipeline trained) : IClassFixture<TrainedSpamPipeline>
{
    public sealed class Scored
    {
        public string PredictedLabel { get; set; } = "";
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    static List<Scored> Predict(MLContext ml, ITransformer model, IDataView data) =>
        ml.Data.CreateEnumerable<Scored>(model.Transform(data), reuseRowObject: false).ToList();

    [Fact]
    public void A_saved_pipeline_loads_with_identical_predictions()
    {
        using var dir = new TempDir();
        var path = dir.File("model.zip");
        var ml = new MLContext();

        ml.Model.SaveWithLora(trained.Model, trained.Train.Schema, path);
        var loaded = ml.Model.LoadWithLora(path, out var schema);

        schema.Select(c => c.Name).Should().Contain(new[] { "Label", "Text" });
        var expected = Predict(ml, trained.Model, trained.Test);
        var actual = Predict(ml, loaded, trained.Test);
        actual.Select(p => p.PredictedLabel).Should().Equal(expected.Select(p => p.PredictedLabel));
        actual.SelectMany(p => p.Score).Should().Equal(expected.SelectMany(p => p.Score), "the same weights and tokenizer give bit-identical scores");
        PipelineStages.LoraStage(loaded).TrainingHistory!.Epochs.Should().HaveCount(trained.Lora.TrainingHistory!.Epochs.Count);
    }

    [Fact]
    public void A_changed_base_checkpoint_is_refused()
    {
        using var dir = new TempDir();
        var baseCopy = Path.Combine(dir.Path, "base");
        CopyFolder(trained.BaseFolder, baseCopy);
        var path = dir.File("model.zip");
        var ml = new MLContext();
        ml.Model.SaveWithLora(trained.Model, trained.Train.Schema, path);

        var weights = Path.Combine(baseCopy, "model.safetensors");
        var bytes = File.ReadAllBytes(weights);
        bytes[^3] ^= 0x40;
        File.WriteAllBytes(weights, bytes);
        var act = () => ml.Model.LoadWithLora(path, out _, new LoraLoadOptions { BaseModelPath = baseCopy });

        act.Should().Throw<InvalidDataException>().WithMessage("*not the one this model was trained on*");
    }

    [Fact]
    public void A_moved_base_checkpoint_is_found_through_the_load_option()
    {
        using var dir = new TempDir();
        var baseCopy = Path.Combine(dir.Path, "moved");
        CopyFolder(trained.BaseFolder, baseCopy);
        var path = dir.File("model.zip");
        var ml = new MLContext();
        ml.Model.SaveWithLora(trained.Model, trained.Train.Schema, path);

        var loaded = ml.Model.LoadWithLora(path, out _, new LoraLoadOptions { BaseModelPath = baseCopy });

        Predict(ml, loaded, trained.Test).SelectMany(p => p.Score).Should().Equal(Predict(ml, trained.Model, trained.Test).SelectMany(p => p.Score));
    }

    [Fact]
    public void An_embedded_base_model_loads_without_the_original_folder()
    {
        using var dir = new TempDir();
        var ml = new MLContext();
        var path = dir.File("self-contained.zip");
        ml.Model.SaveWithLora(trained.Model, trained.Train.Schema, path, new LoraSaveOptions { EmbedBaseModel = true });
        var expected = Predict(ml, trained.Model, trained.Test);
        new FileInfo(path).Length.Should().BeGreaterThan(new FileInfo(Path.Combine(trained.BaseFolder, "model.safetensors")).Length);

        var away = trained.BaseFolder + ".away";
        Directory.Move(trained.BaseFolder, away);
        try
        {
            var loaded = ml.Model.LoadWithLora(path, out _);
            Predict(ml, loaded, trained.Test).SelectMany(p => p.Score).Should().Equal(expected.SelectMany(p => p.Score));
        }
        finally
        {
            Directory.Move(away, trained.BaseFolder);
        }
    }

    [Fact]
    public void Merged_weights_predict_like_the_adapter_within_float_rounding()
    {
        using var dir = new TempDir();
        var path = dir.File("merged.zip");
        var ml = new MLContext();
        ml.Model.SaveWithLora(trained.Model, trained.Train.Schema, path, new LoraSaveOptions { MergeWeights = true });

        var loaded = ml.Model.LoadWithLora(path, out _);

        LoraLinearCount(loaded, adapters: true).Should().Be(0, "merged weights need no adapter");
        var expected = Predict(ml, trained.Model, trained.Test);
        var actual = Predict(ml, loaded, trained.Test);
        actual.Select(p => p.PredictedLabel).Should().Equal(expected.Select(p => p.PredictedLabel));
        for (int i = 0; i < actual.Count; i++)
            for (int j = 0; j < actual[i].Score.Length; j++)
                actual[i].Score[j].Should().BeApproximately(expected[i].Score[j], 1e-5f);
    }

    [Fact]
    public void Mlnet_save_fails_at_once_naming_our_save_call()
    {
        using var dir = new TempDir();
        var ml = new MLContext();

        var act = () => ml.Model.Save(trained.Model, trained.Train.Schema, dir.File("plain.zip"));

        act.Should().Throw<NotSupportedException>().WithMessage("*SaveWithLora*");
    }

    [Fact]
    public void A_failed_save_leaves_the_previous_file_intact()
    {
        using var dir = new TempDir();
        var path = dir.File("model.zip");
        var ml = new MLContext();
        ml.Model.SaveWithLora(trained.Model, trained.Train.Schema, path);
        var original = File.ReadAllBytes(path);
        var failing = new TransformerChain<ITransformer>(trained.Model.Append(new UnsaveableTransformer()).ToArray());

        var act = () => ml.Model.SaveWithLora(failing, trained.Train.Schema, path);

        act.Should().Throw<InvalidOperationException>().WithMessage("*cannot be saved*");
        File.ReadAllBytes(path).Should().Equal(original);
        Directory.GetFiles(dir.Path).Should().HaveCount(1, "no temporary file is left behind");
    }

    [Fact]
    public void The_exported_adapter_is_a_peft_folder_that_reproduces_the_model()
    {
        using var dir = new TempDir();
        var path = dir.File("model.zip");
        var ml = new MLContext();
        ml.Model.SaveWithLora(trained.Model, trained.Train.Schema, path);

        LoraModelFile.ExportAdapter(path, Path.Combine(dir.Path, "peft"));
        using var model = PretrainedModel.Load(trained.BaseFolder, numLabels: 2);
        var info = PeftAdapter.Load(model, Path.Combine(dir.Path, "peft"));

        info.SavedTensors.Should().Contain(new[] { "classifier.weight", "classifier.bias" }, "the trained head is saved as PEFT modules_to_save");
        File.ReadAllText(Path.Combine(dir.Path, "peft", "adapter_config.json")).Should().Contain("\"peft_type\": \"LORA\"");
        var lora = trained.Lora;
        var probe = new[] { "free entry to win a prize now", "see you at lunch" };
        var expected = probe.Select(t => lora.PredictProbabilities(t)).ToArray();
        var rebuilt = new LoraTextClassificationTransformerProbe(model, lora).Probabilities(probe);
        rebuilt.SelectMany(x => x).Should().Equal(expected.SelectMany(x => x));
    }

    static int LoraLinearCount(ITransformer pipeline, bool adapters) =>
        LoraInjector.LinearLayers(PipelineStages.LoraStage(pipeline).Model)
            .Count(l => l.Value.HasAdapter == adapters);

    static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }

    sealed class UnsaveableTransformer : ITransformer
    {
        public bool IsRowToRowMapper => true;
        public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => inputSchema;
        public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => throw new NotSupportedException();
        public IDataView Transform(IDataView input) => input;
        public void Save(ModelSaveContext ctx) => throw new InvalidOperationException("this stage cannot be saved");
    }
}

/// <summary>Scores texts with another model through the same tokenizer as a fitted transformer.</summary>
internal sealed class LoraTextClassificationTransformerProbe(SequenceClassifier model, LoraTextClassificationTransformer like)
{
    public float[][] Probabilities(IEnumerable<string> texts) =>
        new Microsoft.ML.LoRA.Inference.ClassifierScorer(model, like.Encoder, 8).Logits(texts.ToList<string?>())
            .Select(l => { var m = l.Max(); var e = l.Select(v => Math.Exp(v - m)).ToArray(); var s = e.Sum(); return e.Select(v => (float)(v / s)).ToArray(); }).ToArray();
}

/// <summary>A small spam pipeline (MapValueToKey -> LoRA -> MapKeyToValue) fitted once per test class.</summary>
public sealed class TrainedSpamPipeline : IDisposable
{
    readonly TempDir _dir = new();
    public string BaseFolder { get; }
    public LoraTextClassifierOptions Options { get; }
    public TransformerChain<ITransformer> Model { get; }
    public LoraTextClassificationTransformer Lora => PipelineStages.LoraStage(Model);
    public IDataView Train { get; }
    public IDataView Test { get; }

    public TrainedSpamPipeline()
    {
        BaseFolder = TinyCheckpoint.Bert(Path.Combine(_dir.Path, "bert"), hidden: 32, layers: 2, heads: 4, seed: 11);
        var ml = new MLContext(seed: 1);
        Train = ml.Data.LoadFromEnumerable(TextData.Balanced(TextData.SmsSpam(0, 2000), 40));
        Test = ml.Data.LoadFromEnumerable(TextData.Balanced(TextData.SmsSpam(3000, 2000), 20));
        Options = new LoraTextClassifierOptions
        {
            ModelPath = BaseFolder, Epochs = 2, LearningRate = 5e-3, BatchSize = 16, MaxSequenceLength = 48,
            Lora = new LoraOptions { Rank = 4, Alpha = 8, TargetModules = new[] { "query", "value" } },
        };
        var chain = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(Options))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        Model = new TransformerChain<ITransformer>(chain.Fit(Train).ToArray<ITransformer>());
    }

    public void Dispose()
    {
        Lora.Dispose();
        _dir.Dispose();
    }
}
