using Microsoft.ML.LoRA.Export;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Export;

/// <summary>
/// The pre-trained bert-tiny-mlm-en fitted with LoRA on 400 SMS-spam messages and saved as model.zip, exported to ONNX
/// in fp32, int8 and fp16; shared by the tests of a class. <see cref="TestRows"/> are rows the fit never read.
/// </summary>
public sealed class SpamClassifierExport : IDisposable
{
    readonly TempDir _dir = new();

    public SpamClassifierExport()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TextData.Balanced(TextData.SmsSpam(0, 3000), 200));
        var options = new LoraTextClassifierOptions
        {
            ModelPath = SharedData.PretrainedBert, Epochs = 3, BatchSize = 16, LearningRate = 3e-3, MaxSequenceLength = 64, Seed = 1,
            Lora = new LoraOptions { Rank = 8, Alpha = 16 },
        };
        var fitted = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(options)).Fit(train);
        try
        {
            ml.Model.SaveWithLora(fitted, train.Schema, ModelZip);
            OnnxExport.Export(fitted, Fp32Folder);
            OnnxExport.Export(fitted, Int8Folder, new OnnxExportOptions { Precision = OnnxPrecision.Int8 });
            OnnxExport.Export(fitted, Fp16Folder, new OnnxExportOptions { Precision = OnnxPrecision.Float16 });
        }
        finally
        {
            PipelineStages.LoraStage(fitted).Dispose();
        }
    }

    public string ModelZip => _dir.File("model.zip");
    public string Fp32Folder => _dir.File("onnx-fp32");
    public string Int8Folder => _dir.File("onnx-int8");
    public string Fp16Folder => _dir.File("onnx-fp16");

    /// <summary>The last 1500 rows of the collection (the fit read from the first 3000).</summary>
    public static IReadOnlyList<TextData.LabeledText> TestRows { get; } = TextData.SmsSpam(4074, 1500);

    public void Dispose() => _dir.Dispose();
}
