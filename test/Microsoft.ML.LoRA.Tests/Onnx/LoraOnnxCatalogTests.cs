using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Diagnostics;
using Microsoft.ML.LoRA.Export;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Onnx;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Onnx;

/// <summary>
/// The ML.NET stages of an export: the tokenizer stage writes the graph's inputs at each row's length, text pairs
/// included, and the classifier pipeline scores as <see cref="OnnxTextClassifier"/> does; a folder that is not
/// an export is refused by name.
/// </summary>
public class LoraOnnxCatalogTests
{
    sealed class PairRow
    {
        public string Question { get; set; } = "";
        public string Answer { get; set; } = "";
    }

    static readonly PairRow[] Rows =
    {
        new() { Question = "is it raining?", Answer = "yes, all day" },
        new() { Question = "", Answer = "an empty first text" },
        new() { Question = "a much longer question that goes on and on about nothing much at all", Answer = "no" },
    };

    [Fact]
    public void Text_pairs_tokenize_and_score_in_ml_net_as_the_classifier_does()
    {
        using var dir = new TempDir();
        var checkpoint = TinyCheckpoint.Create("bert", dir.File("model"), seed: 2);
        using (var model = PretrainedModel.Load(checkpoint, numLabels: 2))
            OnnxExport.Export(model, new[] { "no", "yes" }, dir.File("onnx"), tokenizerFolder: checkpoint, maxSequenceLength: 16);
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows);

        var tokens = ml.Transforms.TokenizeForLoraOnnx(dir.File("onnx"), "Question", "Answer").Fit(data).Transform(data);
        var ids = tokens.GetColumn<long[]>("input_ids").ToArray();
        var mask = tokens.GetColumn<long[]>("attention_mask").ToArray();
        var types = tokens.GetColumn<long[]>("token_type_ids").ToArray();
        var scored = ml.Transforms.LoraOnnxClassifier(dir.File("onnx"), "Question", "Answer").Fit(data).Transform(data);

        using var classifier = OnnxTextClassifier.Load(dir.File("onnx"));
        for (int i = 0; i < Rows.Length; i++)
        {
            var encoded = classifier.Encoder!.Encode(Rows[i].Question, Rows[i].Answer);
            ids[i].Should().Equal(encoded.InputIds.Select(v => (long)v), "each row at its own length, truncated to the model's");
            ids[i].Length.Should().BeLessThanOrEqualTo(16);
            types[i].Should().Equal(encoded.TokenTypeIds.Select(v => (long)v));
            types[i].Should().Contain(1, "the second text is segment 1");
            mask[i].Should().HaveCount(encoded.Length).And.OnlyContain(v => v == 1);
        }
        var expected = classifier.Logits(Rows.Select(r => r.Question).ToArray(), Rows.Select(r => r.Answer).ToArray()).Select(OnnxTextClassifier.Softmax).ToArray();
        LogitsCases.MaxAbsDifference(scored.GetColumn<float[]>("Score").ToArray(), expected).Should().BeLessThan(1e-5);
        scored.GetColumn<string>("PredictedLabel").Should().Equal(expected.Select(p => p[0] >= p[1] ? "no" : "yes"));
    }

    [Fact]
    public void A_folder_that_is_not_an_export_is_refused_by_name()
    {
        using var dir = new TempDir();

        var load = () => OnnxTextClassifier.Load(dir.Path);

        load.Should().Throw<FileNotFoundException>().WithMessage("*lora-onnx.json*export-onnx*");
        var ml = new MLContext();
        var tokenize = () => ml.Transforms.TokenizeForLoraOnnx(dir.Path);
        tokenize.Should().Throw<FileNotFoundException>().WithMessage("*lora-onnx.json*");
    }
}
