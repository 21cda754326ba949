using Microsoft.ML;
using Microsoft.ML.LoRA.Inference;
using Microsoft.ML.LoRA.Lora;

namespace Microsoft.ML.LoRA.MLNet;

/// <summary>ML.NET catalog entry points for LoRA text classification and regression, and for scoring with many adapters on one base.</summary>
public static class LoraCatalogExtensions
{
    /// <summary>
    /// A LoRA-fine-tuned transformer text classifier. The label must be a key (use <c>MapValueToKey</c>); outputs
    /// Score (class probabilities) and PredictedLabel (key; use <c>MapKeyToValue</c> to get the label back).
    /// </summary>
    public static LoraTextClassificationEstimator LoraTextClassifier(
        this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, LoraTextClassifierOptions options) =>
        new(CatalogContext.Of(catalog), options, ClassifierTask.Multiclass);

    /// <summary>
    /// A LoRA-fine-tuned multiclass text classifier with the common settings. Besides its own parameter names it takes
    /// those of ML.NET's <c>TextClassification</c> trainer as named arguments (<paramref name="sentence1ColumnName"/>,
    /// <paramref name="sentence2ColumnName"/>, <paramref name="scoreColumnName"/>, <paramref name="outputColumnName"/>,
    /// <paramref name="batchSize"/>, <paramref name="maxEpochs"/>, <paramref name="validationSet"/>), so a call to that
    /// trainer becomes a call to this one by renaming it and adding <paramref name="modelPath"/>
    /// (docs/migrating-from-textclassification.md).
    /// </summary>
    /// <param name="catalog">The multiclass trainers catalog.</param>
    /// <param name="modelPath">Hugging Face model folder (or Hub id).</param>
    /// <param name="labelColumnName">Key-typed label column.</param>
    /// <param name="textColumnName">Text column.</param>
    /// <param name="rank">LoRA rank.</param>
    /// <param name="alpha">LoRA alpha.</param>
    /// <param name="epochs">Passes over the training data.</param>
    /// <param name="scoreColumnName">Output column of class probabilities.</param>
    /// <param name="outputColumnName">Output column of the predicted class (a key).</param>
    /// <param name="sentence1ColumnName">ML.NET's name for <paramref name="textColumnName"/>; give one of them.</param>
    /// <param name="sentence2ColumnName">Second text column of sentence pairs; default none.</param>
    /// <param name="batchSize">Examples per training batch; default 16.</param>
    /// <param name="maxEpochs">ML.NET's name for <paramref name="epochs"/>; give one of them.</param>
    /// <param name="validationSet">Data scored after every epoch; the best epoch's weights are kept.</param>
    public static LoraTextClassificationEstimator LoraTextClassifier(
        this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, string modelPath,
        string labelColumnName = "Label", string textColumnName = "Text", int rank = 8, double alpha = 16, int epochs = 3,
        string scoreColumnName = "Score", string outputColumnName = "PredictedLabel", string? sentence1ColumnName = null,
        string? sentence2ColumnName = null, int batchSize = 16, int? maxEpochs = null, IDataView? validationSet = null) =>
        catalog.LoraTextClassifier(CommonOptions(modelPath, labelColumnName, textColumnName, rank, alpha, epochs,
            scoreColumnName, outputColumnName, sentence1ColumnName, sentence2ColumnName, batchSize, maxEpochs, validationSet));

    /// <summary>
    /// A LoRA-fine-tuned binary text classifier. The label must be Boolean; outputs Score (log-odds), Probability and
    /// PredictedLabel, so <c>BinaryClassification.Evaluate</c> works on the result.
    /// </summary>
    public static LoraTextClassificationEstimator LoraTextClassifier(
        this BinaryClassificationCatalog.BinaryClassificationTrainers catalog, LoraTextClassifierOptions options) =>
        new(CatalogContext.Of(catalog), options, ClassifierTask.Binary);

    /// <summary>
    /// A LoRA-fine-tuned binary text classifier with the common settings; like the multiclass overload it also takes
    /// ML.NET's <c>TextClassification</c> parameter names as named arguments.
    /// </summary>
    public static LoraTextClassificationEstimator LoraTextClassifier(
        this BinaryClassificationCatalog.BinaryClassificationTrainers catalog, string modelPath,
        string labelColumnName = "Label", string textColumnName = "Text", int rank = 8, double alpha = 16, int epochs = 3,
        string scoreColumnName = "Score", string outputColumnName = "PredictedLabel", string? sentence1ColumnName = null,
        string? sentence2ColumnName = null, int batchSize = 16, int? maxEpochs = null, IDataView? validationSet = null) =>
        catalog.LoraTextClassifier(CommonOptions(modelPath, labelColumnName, textColumnName, rank, alpha, epochs,
            scoreColumnName, outputColumnName, sentence1ColumnName, sentence2ColumnName, batchSize, maxEpochs, validationSet));

    /// <summary>
    /// A LoRA-fine-tuned transformer that predicts a number from a text or a text pair (the counterpart of ML.NET's
    /// <c>SentenceSimilarity</c> trainer). The label must be Single; outputs Score (the predicted value), so
    /// <c>Regression.Evaluate</c> works on the result. One output, mean squared error; the model is saved, exported
    /// as a PEFT adapter and merged as the classifiers are (docs/regression.md).
    /// </summary>
    public static LoraTextRegressionEstimator LoraTextRegressor(
        this RegressionCatalog.RegressionTrainers catalog, LoraTextRegressorOptions options) =>
        new(CatalogContext.Of(catalog), options);

    /// <summary>
    /// A LoRA-fine-tuned text regressor with the common settings. Like the classifier overloads it also takes the
    /// parameter names of ML.NET's <c>SentenceSimilarity</c> trainer (<paramref name="sentence1ColumnName"/>,
    /// <paramref name="sentence2ColumnName"/>, <paramref name="maxEpochs"/>) as named arguments.
    /// </summary>
    /// <param name="catalog">The regression trainers catalog.</param>
    /// <param name="modelPath">Hugging Face model folder (or Hub id).</param>
    /// <param name="labelColumnName">Single (float) label column.</param>
    /// <param name="textColumnName">Text column.</param>
    /// <param name="rank">LoRA rank.</param>
    /// <param name="alpha">LoRA alpha.</param>
    /// <param name="epochs">Passes over the training data.</param>
    /// <param name="scoreColumnName">Output column of the predicted value.</param>
    /// <param name="sentence1ColumnName">ML.NET's name for <paramref name="textColumnName"/>; give one of them.</param>
    /// <param name="sentence2ColumnName">Second text column of sentence pairs; default none.</param>
    /// <param name="batchSize">Examples per training batch; default 16.</param>
    /// <param name="maxEpochs">ML.NET's name for <paramref name="epochs"/>; give one of them.</param>
    /// <param name="validationSet">Data scored after every epoch; the epoch with the lowest validation loss is kept.</param>
    public static LoraTextRegressionEstimator LoraTextRegressor(
        this RegressionCatalog.RegressionTrainers catalog, string modelPath,
        string labelColumnName = "Label", string textColumnName = "Text", int rank = 8, double alpha = 16, int epochs = 3,
        string scoreColumnName = "Score", string? sentence1ColumnName = null, string? sentence2ColumnName = null,
        int batchSize = 16, int? maxEpochs = null, IDataView? validationSet = null)
    {
        var common = CommonOptions(modelPath, labelColumnName, textColumnName, rank, alpha, epochs,
            scoreColumnName, "PredictedLabel", sentence1ColumnName, sentence2ColumnName, batchSize, maxEpochs, validationSet);
        return catalog.LoraTextRegressor(new LoraTextRegressorOptions
        {
            ModelPath = common.ModelPath, LabelColumnName = common.LabelColumnName, TextColumnName = common.TextColumnName,
            TextPairColumnName = common.TextPairColumnName, ScoreColumnName = common.ScoreColumnName,
            Epochs = common.Epochs, BatchSize = common.BatchSize, ValidationSet = common.ValidationSet, Lora = common.Lora,
        });
    }

    /// <summary>
    /// Scores each row with the adapter its <paramref name="adapterColumnName"/> names, from the adapters of
    /// <paramref name="adapters"/> over their one base model (<c>"__base__"</c> for the base model alone). Outputs Score
    /// (class probabilities) and PredictedLabel (a key) as the multiclass <c>LoraTextClassifier</c> does, so
    /// <c>MulticlassClassification.Evaluate</c> works on the result. The set stays the caller's to dispose.
    /// </summary>
    /// <param name="catalog">mlContext.Transforms.</param>
    /// <param name="adapters">The base model and its adapters (<see cref="LoraAdapterSet.Open"/>, <see cref="LoraAdapterSet.Add"/>).</param>
    /// <param name="adapterColumnName">Text column naming each row's adapter.</param>
    /// <param name="textColumnName">Text column.</param>
    /// <param name="textPairColumnName">Second text column of sentence pairs; default none.</param>
    /// <param name="labelNames">
    /// The class names in class-index order, PredictedLabel's key values; default: the base config's id2label when it
    /// names every class, else "0", "1", ...
    /// </param>
    /// <param name="scoreColumnName">Output column of class probabilities.</param>
    /// <param name="predictedLabelColumnName">Output column of the predicted class (a key).</param>
    /// <exception cref="ArgumentException"><paramref name="labelNames"/> does not name one class per output of the model.</exception>
    public static LoraAdapterSetEstimator ScoreWithLoraAdapters(this TransformsCatalog catalog, LoraAdapterSet adapters,
        string adapterColumnName = "Adapter", string textColumnName = "Text", string? textPairColumnName = null,
        IReadOnlyList<string>? labelNames = null, string scoreColumnName = "Score", string predictedLabelColumnName = "PredictedLabel")
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(adapters);
        var names = labelNames ?? (adapters.Config.Labels.Count == adapters.NumLabels ? adapters.Config.Labels : null);
        if (names is not null && names.Count != adapters.NumLabels)
            throw new ArgumentException($"{names.Count} label names for a model with {adapters.NumLabels} outputs; give one name per class.", nameof(labelNames));
        var labels = names is null
            ? new LabelSet(Enumerable.Range(0, adapters.NumLabels).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray(), "none")
            : new LabelSet(names.ToArray(), "text");
        return new LoraAdapterSetEstimator(new LoraAdapterSetTransformer(adapters, adapterColumnName, textColumnName, textPairColumnName,
            labels, scoreColumnName, predictedLabelColumnName));
    }

    /// <summary>The options both convenience overloads stand for; a setting given under both of its names must agree.</summary>
    static LoraTextClassifierOptions CommonOptions(string modelPath, string labelColumnName, string textColumnName, int rank, double alpha,
        int epochs, string scoreColumnName, string outputColumnName, string? sentence1ColumnName, string? sentence2ColumnName,
        int batchSize, int? maxEpochs, IDataView? validationSet)
    {
        if (sentence1ColumnName is not null && textColumnName != "Text" && sentence1ColumnName != textColumnName)
            throw new ArgumentException($"textColumnName '{textColumnName}' and sentence1ColumnName '{sentence1ColumnName}' name the same setting; give one.", nameof(sentence1ColumnName));
        if (maxEpochs is int max && epochs != 3 && max != epochs)
            throw new ArgumentException($"epochs ({epochs}) and maxEpochs ({max}) name the same setting; give one.", nameof(maxEpochs));
        return new LoraTextClassifierOptions
        {
            ModelPath = modelPath, LabelColumnName = labelColumnName, TextColumnName = sentence1ColumnName ?? textColumnName,
            TextPairColumnName = sentence2ColumnName, ScoreColumnName = scoreColumnName, PredictedLabelColumnName = outputColumnName,
            Epochs = maxEpochs ?? epochs, BatchSize = batchSize, ValidationSet = validationSet,
            Lora = new LoraOptions { Rank = rank, Alpha = alpha },
        };
    }
}
