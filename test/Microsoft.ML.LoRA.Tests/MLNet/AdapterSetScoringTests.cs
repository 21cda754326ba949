using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Inference;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Tests.Inference;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.MLNet;

/// <summary>A tiny DistilBERT with the real vocabulary and three adapters of three labels, each with its own head.</summary>
public sealed class ThreeTextAdapters : IDisposable
{
    readonly TempDir _dir = new();

    public ThreeTextAdapters()
    {
        Base = TinyCheckpoint.Create("distilbert", _dir.File("base"), seed: 3);
        Folders = new[] { "sports", "movies", "news" }.ToDictionary(n => n, n => RandomAdapters.Write(Base, _dir.File(n),
            new LoraOptions { Rank = 4, LoraQuery = true, LoraValue = true, Dropout = 0, UseDora = n == "news" }, seed: n.Length * 7 + n[0], numLabels: 3));
    }

    public string Base { get; }

    public IReadOnlyDictionary<string, string> Folders { get; }

    public LoraAdapterSet OpenSet()
    {
        var set = LoraAdapterSet.Open(Base, numLabels: 3, batchSize: 4);
        foreach (var (name, folder) in Folders) set.Add(name, folder);
        return set;
    }

    public void Dispose() => _dir.Dispose();
}

/// <summary>
/// The ML.NET stage that scores a column of adapter names: each row's Score and PredictedLabel are its adapter's, in
/// the input's order, through Transform and PredictionEngine alike, and MulticlassClassification.Evaluate reads them.
/// </summary>
public class AdapterSetScoringTests(ThreeTextAdapters adapters) : IClassFixture<ThreeTextAdapters>
{
    static readonly string[] Labels = { "negative", "neutral", "positive" };

    public sealed class Row
    {
        public string Text { get; set; } = "";
        public string Adapter { get; set; } = "";
        public string Label { get; set; } = "";
    }

    public sealed class Scored
    {
        public float[] Score { get; set; } = [];
        public uint PredictedLabel { get; set; }
    }

    public sealed class Predicted
    {
        public float[] Score { get; set; } = [];
        public string PredictedLabel { get; set; } = "";
    }

    static readonly string[] Names = { "sports", "movies", LoraAdapterSet.BaseModelName, "news" };

    static List<Row> Rows() => TextData.Sst2("dev.tsv", 0, 22)
        .Select((r, i) => new Row { Text = r.Text, Adapter = Names[i * 5 % Names.Length], Label = Labels[i % Labels.Length] }).ToList();

    static IEstimator<ITransformer> Pipeline(MLContext ml, LoraAdapterSet set) =>
        ml.Transforms.Conversion.MapValueToKey("Label", keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue)
            .Append(ml.Transforms.ScoreWithLoraAdapters(set, adapterColumnName: "Adapter", textColumnName: "Text", labelNames: Labels));

    [Fact]
    public void Each_row_is_scored_by_the_adapter_it_names_in_the_inputs_order()
    {
        using var set = adapters.OpenSet();
        var ml = new MLContext(seed: 0);
        var rows = Rows();
        var data = ml.Data.LoadFromEnumerable(rows);

        var scored = ml.Data.CreateEnumerable<Scored>(Pipeline(ml, set).Fit(data).Transform(data), reuseRowObject: false).ToList();

        scored.Should().HaveCount(rows.Count);
        for (int i = 0; i < rows.Count; i++)
        {
            var expected = Softmax(set.Logits(rows[i].Adapter, new[] { rows[i].Text })[0]);
            scored[i].Score.Zip(expected, (a, e) => Math.Abs(a - e)).Max().Should().BeLessThan(1e-5f, $"row {i} ({rows[i].Adapter})");
            scored[i].PredictedLabel.Should().Be((uint)Array.IndexOf(expected, expected.Max()) + 1);
        }
        rows.Select(r => r.Adapter).Distinct().Should().HaveCount(Names.Length);
    }

    [Fact]
    public void Multiclass_evaluation_reads_the_output_when_the_labels_agree()
    {
        using var set = adapters.OpenSet();
        var ml = new MLContext(seed: 0);
        var data = ml.Data.LoadFromEnumerable(Rows());

        var metrics = ml.MulticlassClassification.Evaluate(Pipeline(ml, set).Fit(data).Transform(data), "Label", "Score", "PredictedLabel");

        metrics.MicroAccuracy.Should().BeInRange(0, 1);
        metrics.LogLoss.Should().BePositive().And.Subject.Should().NotBe(double.PositiveInfinity);
        metrics.ConfusionMatrix.NumberOfClasses.Should().Be(3);
    }

    [Fact]
    public void The_predicted_label_maps_back_to_the_label_names()
    {
        using var set = adapters.OpenSet();
        var ml = new MLContext(seed: 0);
        var rows = Rows();
        var data = ml.Data.LoadFromEnumerable(rows);
        var model = Pipeline(ml, set).Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel")).Fit(data);

        var predicted = ml.Data.CreateEnumerable<Predicted>(model.Transform(data), reuseRowObject: false).ToList();

        predicted.Select(p => p.PredictedLabel).Should().OnlyContain(l => Labels.Contains(l));
        predicted.Select(p => Labels[Array.IndexOf(p.Score, p.Score.Max())]).Should().Equal(predicted.Select(p => p.PredictedLabel));
    }

    [Fact]
    public void A_prediction_engine_scores_each_example_with_its_adapter_as_transform_does()
    {
        using var set = adapters.OpenSet();
        var ml = new MLContext(seed: 0);
        var rows = Rows();
        var data = ml.Data.LoadFromEnumerable(rows);
        var model = Pipeline(ml, set).Fit(data);
        var batch = ml.Data.CreateEnumerable<Scored>(model.Transform(data), reuseRowObject: false).ToList();

        using var engine = ml.Model.CreatePredictionEngine<Row, Scored>(model);
        var single = rows.Select(r => engine.Predict(r)).ToList();

        for (int i = 0; i < rows.Count; i++)
        {
            single[i].Score.Zip(batch[i].Score, (a, b) => Math.Abs(a - b)).Max().Should().BeLessThan(1e-5f, $"row {i}");
            single[i].PredictedLabel.Should().Be(batch[i].PredictedLabel);
        }
    }

    [Fact]
    public void A_row_naming_an_adapter_the_set_lacks_fails_naming_it()
    {
        using var set = adapters.OpenSet();
        var ml = new MLContext(seed: 0);
        var rows = Rows();
        rows[3].Adapter = "weather";
        var data = ml.Data.LoadFromEnumerable(rows);

        var act = () => ml.Data.CreateEnumerable<Scored>(Pipeline(ml, set).Fit(data).Transform(data), reuseRowObject: false).ToList();

        act.Should().Throw<ArgumentException>().WithMessage("*no adapter named 'weather'*");
    }

    [Fact]
    public void Fitting_on_data_without_the_adapter_column_fails_naming_it()
    {
        using var set = adapters.OpenSet();
        var ml = new MLContext(seed: 0);
        var data = ml.Data.LoadFromEnumerable(TextData.Sst2("dev.tsv", 0, 4));

        var act = () => ml.Transforms.ScoreWithLoraAdapters(set, adapterColumnName: "Adapter").Fit(data);

        act.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*Adapter column 'Adapter' is not in the data*");
    }

    [Fact]
    public void Label_names_must_name_every_output()
    {
        using var set = adapters.OpenSet();
        var ml = new MLContext(seed: 0);

        var act = () => ml.Transforms.ScoreWithLoraAdapters(set, labelNames: new[] { "a", "b" });

        act.Should().Throw<ArgumentException>().WithMessage("*2 label names for a model with 3 outputs*");
    }

    [Fact]
    public void The_pipeline_cannot_be_saved_with_mlnets_save_and_says_why()
    {
        using var set = adapters.OpenSet();
        using var dir = new TempDir();
        var ml = new MLContext(seed: 0);
        var data = ml.Data.LoadFromEnumerable(Rows());
        var model = Pipeline(ml, set).Fit(data);

        var act = () => ml.Model.Save(model, data.Schema, dir.File("model.zip"));

        act.Should().Throw<NotSupportedException>().WithMessage("*ScoreWithLoraAdapters*");
    }

    static float[] Softmax(float[] logits)
    {
        float max = logits.Max();
        var e = logits.Select(l => Math.Exp(l - max)).ToArray();
        return e.Select(v => (float)(v / e.Sum())).ToArray();
    }
}
