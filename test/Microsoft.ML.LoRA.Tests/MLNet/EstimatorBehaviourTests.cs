using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Tests.Support;
using TorchSharp;

namespace Microsoft.ML.LoRA.Tests.MLNet;

/// <summary>Schemas, laziness and the defined behaviour for awkward input.</summary>
public class EstimatorBehaviourTests(TinyBertFolder bert) : IClassFixture<TinyBertFolder>
{
    sealed class Row
    {
        public string Label { get; set; } = "";
        public string Text { get; set; } = "";
    }

    LoraTextClassifierOptions Quick(int epochs = 1) => new()
    {
        ModelPath = bert.Path, Epochs = epochs, BatchSize = 8, MaxSequenceLength = 32, LearningRate = 1e-3,
        Lora = new LoraOptions { Rank = 2, Alpha = 4 },
    };

    static List<Row> Rows(int n, params string[] labels) =>
        Enumerable.Range(0, n).Select(i => new Row { Label = labels[i % labels.Length], Text = $"message number {i} about {labels[i % labels.Length]}" }).ToList();

    [Fact]
    public void The_number_of_classes_comes_from_the_key_not_from_the_labels_seen()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Rows(16, "a", "b"));
        var keys = ml.Transforms.Conversion.MapValueToKey("Label", keyData: ml.Data.LoadFromEnumerable(new[] { "a", "b", "c" }.Select(l => new LabelOnly { Label = l }))).Fit(train);

        using var lora = ml.MulticlassClassification.Trainers.LoraTextClassifier(Quick()).Fit(keys.Transform(train));
        var schema = lora.GetOutputSchema(keys.Transform(train).Schema);

        lora.LabelNames.Should().Equal("a", "b", "c");
        schema["Score"].Type.Should().Be(new VectorDataViewType(NumberDataViewType.Single, 3));
        schema["PredictedLabel"].Type.Should().Be(new KeyDataViewType(typeof(uint), 3));
        VBuffer<ReadOnlyMemory<char>> slots = default;
        schema["Score"].GetSlotNames(ref slots);
        slots.DenseValues().Select(s => s.ToString()).Should().Equal("a", "b", "c");
    }

    [Fact]
    public void Estimator_output_schema_describes_the_new_columns()
    {
        var ml = new MLContext();
        var data = ml.Data.LoadFromEnumerable(Rows(4, "x", "y"));
        var chain = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(Quick()))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));

        var shape = chain.GetOutputSchema(SchemaShapes.FromSchema(data.Schema));

        shape.Select(c => c.Name).Should().Contain(new[] { "Score", "PredictedLabel", "Text", "Label" });
        shape.First(c => c.Name == "PredictedLabel").ItemType.Should().Be(TextDataViewType.Instance, "MapKeyToValue found the key values");
    }

    [Fact]
    public void Empty_and_very_long_texts_have_a_defined_result()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Rows(16, "a", "b"));
        var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(Quick())).Fit(train);
        var odd = new List<Row>
        {
            new() { Label = "a", Text = "" },
            new() { Label = "a", Text = null! },
            new() { Label = "b", Text = string.Join(" ", Enumerable.Repeat("word", 20_000)) },
        };

        var scores = ml.Data.CreateEnumerable<ScoreRow>(model.Transform(ml.Data.LoadFromEnumerable(odd)), false).ToList();

        scores.Should().HaveCount(3);
        scores.Should().OnlyContain(s => s.Score.Length == 2 && s.Score.All(float.IsFinite) && Math.Abs(s.Score.Sum() - 1) < 1e-4);
        scores[0].Score.Should().Equal(scores[1].Score, "null text is read as empty text");
    }

    [Fact]
    public void Transform_is_lazy_and_streams_a_window_at_a_time()
    {
        var ml = new MLContext(seed: 1);
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(Quick())).Fit(ml.Data.LoadFromEnumerable(Rows(16, "a", "b")));
        int produced = 0;
        IEnumerable<Row> Endless()
        {
            for (int i = 0; ; i++)
            {
                produced++;
                yield return new Row { Label = "a", Text = $"row {i}" };
            }
        }
        var input = ml.Data.LoadFromEnumerable(Endless());

        var output = model.Transform(input);
        produced.Should().Be(0, "Transform itself reads nothing");
        using var cursor = output.GetRowCursor(output.Schema.Where(c => c.Name == "Score"));
        var getter = cursor.GetGetter<VBuffer<float>>(output.Schema["Score"]);
        VBuffer<float> score = default;
        long liveBefore = 0;
        for (int i = 0; i < 2000; i++)
        {
            cursor.MoveNext().Should().BeTrue();
            getter(ref score);
            if (i == 500) liveBefore = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        }

        produced.Should().BeLessThan(2000 * 2 + 1000, "rows are read as needed, not the endless input");
        DisposeScopeManager.Statistics.ThreadTotalLiveCount.Should().Be(liveBefore, "tensors are disposed window by window");
    }

    [Fact]
    public void Missing_or_mistyped_columns_and_a_missing_model_folder_give_clear_errors()
    {
        var ml = new MLContext();
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(Rows(4, "a", "b")))
            .Transform(ml.Data.LoadFromEnumerable(Rows(4, "a", "b")));
        var raw = ml.Data.LoadFromEnumerable(Rows(4, "a", "b"));

        Action noText = () => ml.MulticlassClassification.Trainers.LoraTextClassifier(new LoraTextClassifierOptions { ModelPath = bert.Path, TextColumnName = "Body" }).Fit(data);
        Action wrongLabel = () => ml.MulticlassClassification.Trainers.LoraTextClassifier(Quick()).Fit(raw);
        Action noFolder = () => ml.MulticlassClassification.Trainers.LoraTextClassifier(new LoraTextClassifierOptions { ModelPath = "/nonexistent/model" }).Fit(data);
        Action noModel = () => ml.MulticlassClassification.Trainers.LoraTextClassifier(new LoraTextClassifierOptions()).Fit(data);
        Action binaryNeedsBool = () => ml.BinaryClassification.Trainers.LoraTextClassifier(Quick()).Fit(data);

        noText.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*Text column 'Body' is not in the data; it has: Label, Text*");
        wrongLabel.Should().Throw<ArgumentException>().WithMessage("*must be a key*MapValueToKey*");
        noFolder.Should().Throw<ArgumentException>().WithMessage("*no folder '/nonexistent/model'*");
        noModel.Should().Throw<ArgumentException>().WithMessage("*ModelPath is required*");
        binaryNeedsBool.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*needs a Boolean label*");
    }

    [Fact]
    public void A_raw_validation_set_is_mapped_through_the_training_labels_and_unseen_labels_are_skipped()
    {
        var ml = new MLContext(seed: 1);
        var messages = new List<string>();
        ml.Log += (_, e) => { lock (messages) messages.Add(e.Message); };
        var options = Quick(epochs: 2);
        options.ValidationSet = ml.Data.LoadFromEnumerable(Rows(12, "a", "b", "zzz"));

        using var lora = (LoraTextClassificationTransformer)ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(options))
            .Fit(ml.Data.LoadFromEnumerable(Rows(24, "a", "b"))).LastTransformer;

        lora.TrainingHistory!.Epochs.Should().OnlyContain(e => e.ValidationAccuracy.HasValue);
        messages.Should().Contain(m => m.Contains("Skipped 4 validation row(s)"));
        messages.Should().Contain(m => m.Contains("LoRA on 12 layers"));
    }

    [Fact]
    public void The_same_seed_and_data_give_the_same_metrics_twice()
    {
        double Run()
        {
            var ml = new MLContext(seed: 1);
            var data = ml.Data.LoadFromEnumerable(TextData.Balanced(TextData.SmsSpam(0, 1000), 16));
            var options = Quick(epochs: 2);
            options.Lora.Dropout = 0.1;
            var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(options)).Fit(data);
            var metrics = ml.MulticlassClassification.Evaluate(model.Transform(data));
            ((IDisposable)model.LastTransformer).Dispose();
            return metrics.LogLoss;
        }

        Run().Should().Be(Run());
    }

    [Fact]
    public void Cancelling_fit_returns_a_usable_model()
    {
        var ml = new MLContext(seed: 1);
        using var cts = new CancellationTokenSource();
        var options = Quick(epochs: 5);
        options.CancellationToken = cts.Token;
        options.Progress = new SynchronousProgress<Microsoft.ML.LoRA.Training.TrainingProgress>(p => { if (p.Step == 2) cts.Cancel(); });

        using var lora = (LoraTextClassificationTransformer)ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(options)).Fit(ml.Data.LoadFromEnumerable(Rows(64, "a", "b"))).LastTransformer;

        lora.TrainingHistory!.Cancelled.Should().BeTrue();
        lora.PredictProbabilities("message number 1 about b").Should().HaveCount(2).And.OnlyContain(p => float.IsFinite(p));
    }

    [Fact]
    public void A_nan_loss_stops_fit_with_a_clear_error()
    {
        using var dir = new TempDir();
        var broken = Path.Combine(dir.Path, "broken");
        foreach (var f in Directory.GetFiles(bert.Path)) { Directory.CreateDirectory(broken); File.Copy(f, Path.Combine(broken, Path.GetFileName(f))); }
        var weights = Microsoft.ML.LoRA.Checkpoints.SafeTensorsSource.OpenFile(Path.Combine(bert.Path, "model.safetensors"));
        var tensors = weights.Names.ToDictionary(n => n, n => weights.ReadFloat32(n));
        tensors["bert.embeddings.LayerNorm.weight"].fill_(float.NaN);
        Microsoft.ML.LoRA.Checkpoints.SafeTensorsWriter.Save(Path.Combine(broken, "model.safetensors"), tensors);
        var ml = new MLContext(seed: 1);
        var options = Quick();
        options.ModelPath = broken;

        var act = () => ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(options))
            .Fit(ml.Data.LoadFromEnumerable(Rows(16, "a", "b")));

        act.Should().Throw<Microsoft.ML.LoRA.Training.TrainingDivergedException>().WithMessage("*NaN*no model was produced*");
    }

    sealed class LabelOnly
    {
        public string Label { get; set; } = "";
    }

    sealed class ScoreRow
    {
        public float[] Score { get; set; } = Array.Empty<float>();
    }
}
