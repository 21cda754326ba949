using Microsoft.ML;
using Microsoft.ML.LoRA.Lora;

namespace Microsoft.ML.LoRA.MLNet;

/// <summary>ML.NET catalog entry points for LoRA text classification.</summary>
public static class LoraCatalogExtensions
{
    /// <summary>
    /// A LoRA-fine-tuned transformer text classifier. The label must be a key (use <c>MapValueToKey</c>); outputs
    /// Score (class probabilities) and PredictedLabel (key; use <c>MapKeyToValue</c> to get the label back).
    /// </summary>
    public static LoraTextClassificationEstimator LoraTextClassifier(
        this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, LoraTextClassifierOptions options) =>
        new(CatalogContext.Of(catalog), options, ClassifierTask.Multiclass);

    /// <summary>A LoRA-fine-tuned multiclass text classifier with the common settings.</summary>
    /// <param name="catalog">The multiclass trainers catalog.</param>
    /// <param name="modelPath">Hugging Face model folder (or Hub id).</param>
    /// <param name="labelColumnName">Key-typed label column.</param>
    /// <param name="textColumnName">Text column.</param>
    /// <param name="rank">LoRA rank.</param>
    /// <param name="alpha">LoRA alpha.</param>
    /// <param name="epochs">Passes over the training data.</param>
    public static LoraTextClassificationEstimator LoraTextClassifier(
        this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, string modelPath,
        string labelColumnName = "Label", string textColumnName = "Text", int rank = 8, double alpha = 16, int epochs = 3) =>
        catalog.LoraTextClassifier(CommonOptions(modelPath, labelColumnName, textColumnName, rank, alpha, epochs));

    /// <summary>
    /// A LoRA-fine-tuned binary text classifier. The label must be Boolean; outputs Score (log-odds), Probability and
    /// PredictedLabel, so <c>BinaryClassification.Evaluate</c> works on the result.
    /// </summary>
    public static LoraTextClassificationEstimator LoraTextClassifier(
        this BinaryClassificationCatalog.BinaryClassificationTrainers catalog, LoraTextClassifierOptions options) =>
        new(CatalogContext.Of(catalog), options, ClassifierTask.Binary);

    /// <summary>A LoRA-fine-tuned binary text classifier with the common settings.</summary>
    public static LoraTextClassificationEstimator LoraTextClassifier(
        this BinaryClassificationCatalog.BinaryClassificationTrainers catalog, string modelPath,
        string labelColumnName = "Label", string textColumnName = "Text", int rank = 8, double alpha = 16, int epochs = 3) =>
        catalog.LoraTextClassifier(CommonOptions(modelPath, labelColumnName, textColumnName, rank, alpha, epochs));

    /// <summary>The options both convenience overloads stand for.</summary>
    static LoraTextClassifierOptions CommonOptions(string modelPath, string labelColumnName, string textColumnName, int rank, double alpha, int epochs) => new()
    {
        ModelPath = modelPath, LabelColumnName = labelColumnName, TextColumnName = textColumnName, Epochs = epochs,
        Lora = new LoraOptions { Rank = rank, Alpha = alpha },
    };
}
