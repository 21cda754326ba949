using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Data;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.Transforms;

namespace Microsoft.ML.LoRA.Cli.Running;

/// <summary>
/// The pipeline every CLI run fits: the text label mapped to a key (classes in sorted order, so the same labels
/// always get the same class indices), the LoRA classifier, and the predicted key mapped back to the label text. For
/// regression (<see cref="LoraTextRegressorOptions"/>): the text label converted to Single, then the LoRA regressor.
/// </summary>
internal static class ClassifierPipeline
{
    public static IEstimator<ITransformer> Build(MLContext ml, LoraTextClassifierOptions options) => options is LoraTextRegressorOptions regression
        ? ml.Transforms.Conversion.ConvertType(LabeledTextColumns.Label, outputKind: DataKind.Single)
            .Append(ml.Regression.Trainers.LoraTextRegressor(regression))
        : ml.Transforms.Conversion.MapValueToKey(LabeledTextColumns.Label, keyOrdinality: ValueToKeyMappingEstimator.KeyOrdinality.ByValue)
            .Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(options))
            .Append(ml.Transforms.Conversion.MapKeyToValue(options.PredictedLabelColumnName));

    /// <summary>Classifier (or, with <paramref name="regression"/>, regressor) options reading the columns the data loader produces.</summary>
    public static LoraTextClassifierOptions Options(string model, bool hasPair, bool regression = false)
    {
        var options = regression ? new LoraTextRegressorOptions() : new LoraTextClassifierOptions();
        options.ModelPath = model;
        options.TextColumnName = LabeledTextColumns.Text;
        options.TextPairColumnName = hasPair ? LabeledTextColumns.TextPair : null;
        options.LabelColumnName = LabeledTextColumns.Label;
        return options;
    }
}
