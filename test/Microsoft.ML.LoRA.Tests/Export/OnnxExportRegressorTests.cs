using Microsoft.ML;
using Microsoft.ML.LoRA.Export;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Export;

/// <summary>ONNX export writes classifiers; a regressor is refused before anything is written, with what to do instead.</summary>
public class OnnxExportRegressorTests
{
    sealed class Rated
    {
        public float Label { get; set; }
        public string Text { get; set; } = "";
    }

    [Fact]
    public void A_regressor_is_refused_and_nothing_is_written()
    {
        using var dir = new TempDir();
        var bert = TinyCheckpoint.Bert(dir.File("bert"), hidden: 32, layers: 1, heads: 2);
        var ml = new MLContext(seed: 1);
        var rows = Enumerable.Range(0, 16).Select(i => new Rated { Label = i % 5, Text = $"review number {i}" }).ToList();
        var model = ml.Regression.Trainers.LoraTextRegressor(new LoraTextRegressorOptions
        {
            ModelPath = bert, Epochs = 1, BatchSize = 8, MaxSequenceLength = 16, Lora = new LoraOptions { Rank = 2 },
        }).Fit(ml.Data.LoadFromEnumerable(rows));
        var output = dir.File("onnx");

        var export = () => OnnxExport.Export(model, output);

        export.Should().Throw<NotSupportedException>().WithMessage("*regressor*lora merge*");
        Directory.Exists(output).Should().BeFalse();
        model.Dispose();
    }
}
