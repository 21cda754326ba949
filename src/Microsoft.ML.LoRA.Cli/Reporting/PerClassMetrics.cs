using System.Globalization;
using Microsoft.ML.Data;

namespace Microsoft.ML.LoRA.Cli.Reporting;

/// <summary>
/// Per-class precision, recall and F1 computed from ML.NET's <see cref="ConfusionMatrix"/>, whose
/// <see cref="ConfusionMatrix.Counts"/>[i][j] is the number of examples of class i predicted as class j.
/// </summary>
internal static class PerClassMetrics
{
    /// <summary>
    /// The figures of every class, in the matrix's order. <paramref name="classNames"/> names the classes in that order
    /// (ML.NET's binary matrices list the positive class first); null: "0", "1", ....
    /// </summary>
    public static IReadOnlyList<ClassMetrics> From(ConfusionMatrix matrix, IReadOnlyList<string>? classNames = null)
    {
        var names = Names(matrix, classNames);
        var counts = matrix.Counts;
        int n = matrix.NumberOfClasses;
        var result = new List<ClassMetrics>(n);
        for (int k = 0; k < n; k++)
        {
            double truePositives = counts[k][k];
            double support = counts[k].Sum();
            double predicted = Enumerable.Range(0, n).Sum(i => counts[i][k]);
            double precision = predicted > 0 ? truePositives / predicted : 0;
            double recall = support > 0 ? truePositives / support : 0;
            double f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0;
            result.Add(new ClassMetrics(names[k], support, predicted, precision, recall, f1));
        }
        return result;
    }

    /// <summary>The unweighted mean of each class's precision, recall and F1 (support and predicted are totals).</summary>
    public static ClassMetrics MacroAverage(IReadOnlyList<ClassMetrics> classes) => new(
        "Macro average",
        classes.Sum(c => c.Support),
        classes.Sum(c => c.Predicted),
        classes.Count == 0 ? 0 : classes.Average(c => c.Precision),
        classes.Count == 0 ? 0 : classes.Average(c => c.Recall),
        classes.Count == 0 ? 0 : classes.Average(c => c.F1));

    /// <summary>The class names to show: the given ones (one per class), or the class indices.</summary>
    public static IReadOnlyList<string> Names(ConfusionMatrix matrix, IReadOnlyList<string>? classNames)
    {
        if (classNames is null)
            return Enumerable.Range(0, matrix.NumberOfClasses).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToList();
        if (classNames.Count != matrix.NumberOfClasses)
            throw new ArgumentException($"{classNames.Count} class names were given for a confusion matrix of {matrix.NumberOfClasses} classes.");
        return classNames;
    }
}
