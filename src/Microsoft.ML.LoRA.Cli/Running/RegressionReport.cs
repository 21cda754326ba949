using System.Globalization;
using System.Text.Json.Serialization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Cli.Reporting;
using Microsoft.ML.LoRA.Data;
using Spectre.Console;

namespace Microsoft.ML.LoRA.Cli.Running;

/// <summary>
/// What evaluating a regression model (<c>lora train --task regression</c>) on labelled rows found, as metrics.json
/// holds it and the evaluate command prints it. Every row read is accounted for: <see cref="RowsRead"/> =
/// <see cref="RowsScored"/> + <see cref="RowsSkipped"/>; a row is skipped only when its label cell is empty.
/// </summary>
/// <param name="EvaluatedOn">"data", "validation" or "training".</param>
/// <param name="Task">Always "regression" (a classifier's metrics.json has no such field).</param>
/// <param name="RowsRead">Every row of the evaluated data.</param>
/// <param name="RowsScored">The rows with a label, which every figure is computed over.</param>
/// <param name="RowsSkipped">The rows without a label.</param>
/// <param name="Rows">The same as <see cref="RowsScored"/> (as in a classifier's metrics.json).</param>
/// <param name="Rmse">Root mean squared error (ML.NET's RootMeanSquaredError).</param>
/// <param name="Mae">Mean absolute error (ML.NET's MeanAbsoluteError).</param>
/// <param name="RSquared">Coefficient of determination (ML.NET's RSquared): 1 - MSE / variance of the labels.</param>
/// <param name="Pearson">Pearson's correlation of predictions and labels (null when either is constant).</param>
/// <param name="Spearman">Spearman's rank correlation of predictions and labels, ties at their mean rank (null when either is constant).</param>
/// <param name="LabelMean">Mean of the evaluated labels.</param>
/// <param name="PredictionMean">Mean of the predictions.</param>
/// <param name="TrainingMean">Mean of the training labels (train only).</param>
/// <param name="TrainingMeanRmse">RMSE of predicting <see cref="TrainingMean"/> for every row: what the model must beat (train only).</param>
/// <param name="EmptyTextRows">Rows whose text (or second text) is empty or blank; they are scored as they are.</param>
/// <param name="Training">The training run's figures, in a run folder's metrics.json only.</param>
internal sealed record RegressionReport(
    string EvaluatedOn,
    string Task,
    long RowsRead,
    long RowsScored,
    long RowsSkipped,
    long Rows,
    double Rmse,
    double Mae,
    double RSquared,
    double? Pearson,
    double? Spearman,
    double LabelMean,
    double PredictionMean,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? TrainingMean,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? TrainingMeanRmse,
    long EmptyTextRows,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] TrainingFigures? Training = null)
{
    const string ScoreColumn = "Score";

    /// <summary>
    /// Checks every label of <paramref name="data"/> (text column <see cref="LabeledTextColumns.Label"/>) is a number
    /// or empty, and returns how many are numbers and their mean.
    /// </summary>
    /// <exception cref="InvalidDataException">A label is not a number (naming <paramref name="source"/> and the data row), or none is given.</exception>
    public static (long Count, double Mean) CheckLabels(IDataView data, string source)
    {
        var column = data.Schema.GetColumnOrNull(LabeledTextColumns.Label) is { } found ? found
            : throw new InvalidDataException($"{source} has no label column; --task regression needs numeric labels (--label-column names the column).");
        using var cursor = data.GetRowCursor(new[] { column });
        var get = cursor.GetGetter<ReadOnlyMemory<char>>(column);
        ReadOnlyMemory<char> value = default;
        long row = 0, count = 0;
        double sum = 0;
        while (cursor.MoveNext())
        {
            row++;
            get(ref value);
            var text = value.Span.Trim();
            if (text.IsEmpty) continue;
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double number) || !double.IsFinite(number))
                throw new InvalidDataException(
                    $"{source}, data row {row}: the label '{text.ToString()}' is not a number; --task regression needs numeric labels " +
                    "(--label-column names the column; an empty label skips the row).");
            count++;
            sum += number;
        }
        if (count == 0)
            throw new InvalidDataException(row == 0 ? $"{source} has no data rows." : $"{source}: none of its {row:N0} rows has a label.");
        return (count, sum / count);
    }

    /// <summary>
    /// Scores <paramref name="data"/> with the regression pipeline <paramref name="model"/> (which converts the text
    /// label to a number) and computes the figures over the rows with a label.
    /// </summary>
    /// <param name="ml">The context to evaluate in.</param>
    /// <param name="model">The fitted pipeline: label conversion, then the LoRA regressor.</param>
    /// <param name="data">Rows with a text label column.</param>
    /// <param name="evaluatedOn">"data", "validation" or "training".</param>
    /// <param name="source">What the data is, for error messages (a file path); default "the {evaluatedOn} data".</param>
    /// <param name="trainingMean">The training labels' mean, when known: reported with the RMSE of predicting it.</param>
    public static (RegressionReport Report, RegressionMetrics Metrics) Evaluate(
        MLContext ml, ITransformer model, IDataView data, string evaluatedOn, string? source = null, double? trainingMean = null)
    {
        source ??= $"the {evaluatedOn} data";
        CheckLabels(data, source);
        var scored = ml.Data.Cache(model.Transform(data), LabeledTextColumns.Label, ScoreColumn);
        var labels = new List<double>();
        var predictions = new List<double>();
        long read = 0;
        using (var cursor = scored.GetRowCursor(new[] { scored.Schema[LabeledTextColumns.Label], scored.Schema[ScoreColumn] }))
        {
            var getLabel = cursor.GetGetter<float>(scored.Schema[LabeledTextColumns.Label]);
            var getScore = cursor.GetGetter<float>(scored.Schema[ScoreColumn]);
            float label = 0, score = 0;
            while (cursor.MoveNext())
            {
                read++;
                getLabel(ref label);
                if (float.IsNaN(label)) continue;
                getScore(ref score);
                labels.Add(label);
                predictions.Add(score);
            }
        }
        var metrics = ml.Regression.Evaluate(ml.Data.FilterRowsByMissingValues(scored, LabeledTextColumns.Label), LabeledTextColumns.Label, ScoreColumn);
        double? baseline = trainingMean is { } m ? Math.Sqrt(labels.Average(y => (y - m) * (y - m))) : null;
        var report = new RegressionReport(
            evaluatedOn, "regression", read, labels.Count, read - labels.Count, labels.Count,
            metrics.RootMeanSquaredError, metrics.MeanAbsoluteError, metrics.RSquared,
            Finite(Correlation.Pearson(predictions, labels)), Finite(Correlation.Spearman(predictions, labels)),
            labels.Average(), predictions.Average(), trainingMean, baseline, EmptyTexts.Count(data));
        return (report, metrics);
    }

    static double? Finite(double value) => double.IsFinite(value) ? value : null;

    /// <summary>The metrics table train and evaluate print.</summary>
    public static void Print(IAnsiConsole console, RegressionReport report, string title)
    {
        var table = new Table().AddColumn("Metric").AddColumn(new TableColumn("Value").RightAligned())
            .Title(Markup.Escape($"{title} ({report.RowsScored:N0} rows)"));
        void Row(string name, double? value) => table.AddRow(Markup.Escape(name), value is { } v ? MetricsTable.Format(v) : "n/a");
        Row("RMSE", report.Rmse);
        Row("MAE", report.Mae);
        Row("R²", report.RSquared);
        Row("Pearson correlation", report.Pearson);
        Row("Spearman correlation", report.Spearman);
        if (report.TrainingMeanRmse is { } baseline)
            Row(string.Create(CultureInfo.InvariantCulture, $"RMSE of predicting the training mean ({report.TrainingMean:F4})"), baseline);
        console.Write(table);
        if (report.RowsSkipped > 0 || report.EmptyTextRows > 0)
        {
            var rows = new Table().AddColumn("Rows").AddColumn(new TableColumn("Count").RightAligned()).Title("Rows");
            rows.AddRow("Read", report.RowsRead.ToString("N0", CultureInfo.InvariantCulture));
            rows.AddRow("Evaluated (have a label)", report.RowsScored.ToString("N0", CultureInfo.InvariantCulture));
            if (report.RowsSkipped > 0) rows.AddRow("Skipped: no label", report.RowsSkipped.ToString("N0", CultureInfo.InvariantCulture));
            if (report.EmptyTextRows > 0) rows.AddRow("Empty text (scored as it is)", report.EmptyTextRows.ToString("N0", CultureInfo.InvariantCulture));
            console.Write(rows);
        }
    }
}
