using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.LoRA.Tests.Cli.Reporting;

/// <summary>Real ML.NET metrics, computed by ML.NET's evaluators from predictions laid out by hand.</summary>
public static class EvaluationData
{
    /// <summary>
    /// Three classes; <see cref="Confusion"/>[actual][predicted] examples each.
    /// Class 0: 6 examples, 7 predicted, 5 right. Class 1: 6 examples, 4 predicted, 3 right. Class 2: 4 examples, 5 predicted, 4 right.
    /// </summary>
    public static readonly int[][] Confusion =
    {
        new[] { 5, 1, 0 },
        new[] { 2, 3, 1 },
        new[] { 0, 0, 4 },
    };

    sealed class MulticlassRow
    {
        [KeyType(3)] public uint Label { get; set; }
        [VectorType(3)] public float[] Score { get; set; } = Array.Empty<float>();
        [KeyType(3)] public uint PredictedLabel { get; set; }
    }

    sealed class BinaryRow
    {
        public bool Label { get; set; }
        public float Score { get; set; }
        public float Probability { get; set; }
        public bool PredictedLabel { get; set; }
    }

    /// <summary>Metrics of predictions laid out as <paramref name="confusion"/> (default <see cref="Confusion"/>), three classes.</summary>
    public static MulticlassClassificationMetrics Multiclass(int[][]? confusion = null)
    {
        confusion ??= Confusion;
        var rows = new List<MulticlassRow>();
        for (int actual = 0; actual < 3; actual++)
            for (int predicted = 0; predicted < 3; predicted++)
                for (int k = 0; k < confusion[actual][predicted]; k++)
                {
                    var score = new[] { 0.1f, 0.1f, 0.1f };
                    score[predicted] = 0.8f;
                    // LoadFromEnumerable reads a [KeyType] uint as the 0-based class index.
                    rows.Add(new MulticlassRow { Label = (uint)actual, Score = score, PredictedLabel = (uint)predicted });
                }
        var ml = new MLContext(0);
        return ml.MulticlassClassification.Evaluate(ml.Data.LoadFromEnumerable(rows));
    }

    /// <summary>10 examples: 4 true positives, 1 false negative, 2 false positives, 3 true negatives.</summary>
    public static CalibratedBinaryClassificationMetrics Binary()
    {
        var outcomes = new (bool Actual, bool Predicted, int Count)[] { (true, true, 4), (true, false, 1), (false, true, 2), (false, false, 3) };
        var rows = new List<BinaryRow>();
        float step = 0;
        foreach (var (actual, predicted, count) in outcomes)
            for (int k = 0; k < count; k++, step += 0.01f)
            {
                float p = predicted ? 0.7f + step : 0.3f - step;
                rows.Add(new BinaryRow { Label = actual, Score = p * 10 - 5, Probability = p, PredictedLabel = predicted });
            }
        var ml = new MLContext(0);
        return ml.BinaryClassification.Evaluate(ml.Data.LoadFromEnumerable(rows));
    }
}
