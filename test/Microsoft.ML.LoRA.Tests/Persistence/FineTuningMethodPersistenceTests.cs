using System.IO.Compression;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Persistence;

/// <summary>
/// Head-only, last-layers and full fits save the weights they changed in model.zip (no PEFT adapter), load back with
/// identical scores, and refuse to export a PEFT adapter with a message that says what to do instead.
/// </summary>
public class FineTuningMethodPersistenceTests
{
    public sealed class Scored
    {
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    sealed class Fitted : IDisposable
    {
        public required TempDir Dir { get; init; }
        public required MLContext Ml { get; init; }
        public required ITransformer Model { get; init; }
        public required IDataView Train { get; init; }
        public required IDataView Test { get; init; }
        public string BaseFolder => Path.Combine(Dir.Path, "bert");
        public LoraTextClassificationTransformer Lora => PipelineStages.LoraStage(Model);
        public float[] Scores(ITransformer model) =>
            Ml.Data.CreateEnumerable<Scored>(model.Transform(Test), reuseRowObject: false).SelectMany(s => s.Score).ToArray();
        public void Dispose() { Lora.Dispose(); Dir.Dispose(); }
    }

    static Fitted Fit(FineTuning method)
    {
        var dir = new TempDir();
        TinyCheckpoint.Bert(Path.Combine(dir.Path, "bert"), hidden: 32, seed: 4);
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TextData.Balanced(TextData.SmsSpam(0, 2000), 24));
        var test = ml.Data.LoadFromEnumerable(TextData.Balanced(TextData.SmsSpam(3000, 2000), 10));
        var options = new LoraTextClassifierOptions
        {
            ModelPath = Path.Combine(dir.Path, "bert"), Epochs = 1, LearningRate = 1e-3, BatchSize = 8, MaxSequenceLength = 32, FineTuning = method,
        };
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(options)).Fit(train);
        return new Fitted { Dir = dir, Ml = ml, Model = model, Train = train, Test = test };
    }

    public static TheoryData<string> NonLoraMethods => new() { "head", "last-layers:1", "full" };

    [Theory]
    [MemberData(nameof(NonLoraMethods))]
    public void A_non_LoRA_fit_saves_its_changed_weights_and_loads_with_identical_scores(string method)
    {
        using var fitted = Fit(FineTuning.Parse(method));
        var path = fitted.Dir.File("model.zip");

        fitted.Ml.Model.SaveWithLora(fitted.Model, fitted.Train.Schema, path);
        var loaded = fitted.Ml.Model.LoadWithLora(path, out _);

        using (var zip = ZipFile.OpenRead(path))
        {
            zip.GetEntry("weights/trained.safetensors").Should().NotBeNull();
            zip.Entries.Should().NotContain(e => e.FullName.StartsWith("adapter/"));
        }
        LoraModelFile.ReadManifest(path).FineTuning.Should().Be(FineTuning.Parse(method));
        fitted.Scores(loaded).Should().Equal(fitted.Scores(fitted.Model), "the changed weights are stored exactly");
        PipelineStages.LoraStage(loaded).Dispose();
    }

    [Fact]
    public void A_full_fit_stores_every_weight_and_the_stored_weights_differ_from_the_base()
    {
        using var fitted = Fit(FineTuning.Full);
        var path = fitted.Dir.File("model.zip");
        fitted.Ml.Model.SaveWithLora(fitted.Model, fitted.Train.Schema, path);

        using var zip = ZipFile.OpenRead(path);
        var file = fitted.Dir.File("trained.safetensors");
        zip.GetEntry("weights/trained.safetensors")!.ExtractToFile(file);
        var stored = SafeTensorsFile.Open(file);
        var baseWeights = SafeTensorsFile.Open(Path.Combine(fitted.BaseFolder, "model.safetensors"));

        stored.Entries.Select(e => e.Name).Should().BeEquivalentTo(fitted.Lora.Model.named_parameters().Select(p => p.name));
        const string weight = "bert.encoder.layer.0.attention.self.query.weight";
        using var before = baseWeights.ReadFloat32(weight);
        using var after = stored.ReadFloat32(weight);
        after.allclose(before).Should().BeFalse("full fine-tuning changes the encoder's weights");
    }

    [Fact]
    public void Trained_weights_read_as_they_inflate_are_still_checked_against_the_manifest()
    {
        using var fitted = Fit(FineTuning.HeadOnly);
        var path = fitted.Dir.File("model.zip");
        fitted.Ml.Model.SaveWithLora(fitted.Model, fitted.Train.Schema, path);
        var nan = BitConverter.GetBytes(float.NaN);
        // The last tensor's bytes: they are copied into the model before the end of the entry shows the hash is wrong.
        ModelZipSurgery.Rewrite(path, fitted.Dir.File("nan.zip"), (name, bytes) =>
        {
            if (name != "weights/trained.safetensors") return bytes;
            for (int i = bytes.Length - 16; i < bytes.Length; i += 4) nan.CopyTo(bytes, i);
            return bytes;
        });

        var load = () => fitted.Ml.Model.LoadWithLora(fitted.Dir.File("nan.zip"), out _);

        var error = load.Should().Throw<ModelFileException>().Which;
        error.Entry.Should().Be("weights/trained.safetensors");
        error.Message.Should().Contain("SHA-256");
    }

    [Fact]
    public void A_non_LoRA_model_refuses_to_export_a_PEFT_adapter_and_points_to_merge()
    {
        using var fitted = Fit(FineTuning.HeadOnly);
        var path = fitted.Dir.File("model.zip");
        fitted.Ml.Model.SaveWithLora(fitted.Model, fitted.Train.Schema, path);

        var export = () => LoraModelFile.ExportAdapter(path, fitted.Dir.File("adapter"));
        var save = () => fitted.Lora.SaveAdapter(fitted.Dir.File("adapter2"));

        export.Should().Throw<NotSupportedException>().WithMessage("*method 'head', not LoRA*no PEFT adapter*lora merge*");
        save.Should().Throw<NotSupportedException>();
        Directory.Exists(fitted.Dir.File("adapter")).Should().BeFalse();
    }

    [Fact]
    public void A_non_LoRA_model_merges_into_a_self_contained_file_with_identical_scores()
    {
        using var fitted = Fit(FineTuning.LastLayers(1));
        var path = fitted.Dir.File("merged.zip");

        fitted.Ml.Model.SaveWithLora(fitted.Model, fitted.Train.Schema, path, new LoraSaveOptions { MergeWeights = true });
        Directory.Delete(fitted.BaseFolder, recursive: true);
        var loaded = fitted.Ml.Model.LoadWithLora(path, out _);

        fitted.Scores(loaded).Should().BeEquivalentTo(fitted.Scores(fitted.Model), o => o.WithStrictOrdering()
            .Using<float>(c => c.Subject.Should().BeApproximately(c.Expectation, 1e-5f)).WhenTypeIs<float>());
        PipelineStages.LoraStage(loaded).Dispose();
    }
}
