using Microsoft.ML;
using Microsoft.ML.LoRA.Data;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.Transforms;

namespace Microsoft.ML.LoRA.Cli.Running;

/// <summary>
/// The pipeline every CLI run fits: the text label mapped to a key (classes in sorted order, so the same labels
/// always get the same class indices), the LoRA classifier, and the predicted key mapped back to the label text.
/// </summary>
internal static class ClassifierPipeline
{
    public static IEstimator<ITransformer> Build(MLContext ml, LoraTextClassifierOptions options) =>
        ml.Transforms.Conversion.MapValueToKey(LabeledTextColumns.Label, keyOrdinality: ValueToKeyMappingEstimator.KeyOrdinality.ByValue)
            .Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(options))
            .Append(ml.Transforms.Conversion.MapKeyToValue(options.PredictedLabelColumnName));

    /// <summary>Classifier options reading the columns the data loader produces.</summary>
    public static LoraTextClassifierOptions Options(string model, bool hasPair) => new()
    {
        ModelPath = model,
        TextColumnName = LabeledTextColumns.Text,
        TextPairColumnName = hasPair ? LabeledTextColumns.TextPair : null,
        LabelColumnName = LabeledTextColumns.Label,
    };
}
