using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Training;

namespace Microsoft.ML.LoRA.MLNet;

/// <summary>What the estimator does differently for a regression model: the label's type, the objective, the Score column.</summary>
internal static class RegressionLabel
{
    /// <summary>The one output of a regression model, after checking the label is Single.</summary>
    public static LabelSet Check(DataViewSchema.Column label)
    {
        if (label.Type != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(label), $"Label column '{label.Name}' has type {label.Type}; the regressor needs a Single (float) label. " +
                $"Add mlContext.Transforms.Conversion.ConvertType(\"{label.Name}\", outputKind: DataKind.Single) before the trainer.");
        return LabelSet.Regression();
    }

    /// <summary>Mean squared error on standardised labels, unless <see cref="LoraTextRegressorOptions.StandardizeLabel"/> is off.</summary>
    public static RegressionObjective Objective(LoraTextClassifierOptions options, IReadOnlyList<LabeledExample> train, SequenceClassifier model, Action<string> log)
    {
        if (options is LoraTextRegressorOptions { StandardizeLabel: false })
        {
            log("Training on the labels as they are (StandardizeLabel = false).");
            return RegressionObjective.Raw;
        }
        var objective = RegressionObjective.Standardized(train, model);
        log(string.Create(CultureInfo.InvariantCulture,
            $"Training on standardised labels (y - {objective.Shift:G6}) / {objective.Scale:G6}; the head is rescaled afterwards to predict y. Losses are in standardised units (1 = predicting the mean)."));
        return objective;
    }

    /// <summary>The Score column a regression model appends, annotated as ML.NET's regression trainers annotate theirs.</summary>
    public static SchemaShape.Column ScoreShape(SchemaShape.Column label, string scoreColumnName)
    {
        if (label.ItemType != NumberDataViewType.Single || label.Kind != SchemaShape.Column.VectorKind.Scalar)
            throw new ArgumentOutOfRangeException(nameof(label), $"Label column '{label.Name}' must be a Single (float) scalar for the regressor.");
        var annotations = new SchemaShape(new[]
        {
            SchemaShapes.Column(AnnotationNames.ScoreColumnKind, SchemaShape.Column.VectorKind.Scalar, TextDataViewType.Instance, false),
            SchemaShapes.Column(AnnotationNames.ScoreValueKind, SchemaShape.Column.VectorKind.Scalar, TextDataViewType.Instance, false),
        });
        return SchemaShapes.Column(scoreColumnName, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false, annotations);
    }
}
