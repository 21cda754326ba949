using Microsoft.ML.LoRA.Cli.Reporting;

namespace Microsoft.ML.LoRA.Tests.Cli.Reporting;

/// <summary>Per-class precision, recall and F1 from ML.NET's confusion matrix, checked against hand-computed values.</summary>
public class PerClassMetricsTests
{
    [Fact]
    public void Confusion_matrix_counts_are_actual_by_predicted()
    {
        var matrix = EvaluationData.Multiclass().ConfusionMatrix;

        matrix.Counts.Select(r => r.Select(c => (int)c).ToArray()).Should().BeEquivalentTo(EvaluationData.Confusion, o => o.WithStrictOrdering());
    }

    [Fact]
    public void Per_class_figures_match_the_hand_computed_ones()
    {
        var classes = PerClassMetrics.From(EvaluationData.Multiclass().ConfusionMatrix, new[] { "World", "Sports", "Business" });

        classes.Select(c => c.Class).Should().Equal("World", "Sports", "Business");
        // class 0: 5 right of 7 predicted, of 6 examples
        classes[0].Precision.Should().BeApproximately(5.0 / 7, 1e-12);
        classes[0].Recall.Should().BeApproximately(5.0 / 6, 1e-12);
        classes[0].F1.Should().BeApproximately(10.0 / 13, 1e-12); // 2PR/(P+R) = (50/42)/(65/42)
        classes[0].Support.Should().Be(6);
        classes[0].Predicted.Should().Be(7);
        // class 1: 3 right of 4 predicted, of 6 examples
        classes[1].Precision.Should().BeApproximately(0.75, 1e-12);
        classes[1].Recall.Should().BeApproximately(0.5, 1e-12);
        classes[1].F1.Should().BeApproximately(0.6, 1e-12);
        // class 2: 4 right of 5 predicted, of 4 examples
        classes[2].Precision.Should().BeApproximately(0.8, 1e-12);
        classes[2].Recall.Should().BeApproximately(1.0, 1e-12);
        classes[2].F1.Should().BeApproximately(8.0 / 9, 1e-12);
    }

    [Fact]
    public void Precision_and_recall_agree_with_mlnet()
    {
        var matrix = EvaluationData.Multiclass().ConfusionMatrix;

        var classes = PerClassMetrics.From(matrix);

        classes.Select(c => c.Precision).Should().Equal(matrix.PerClassPrecision, (a, b) => Math.Abs(a - b) < 1e-9);
        classes.Select(c => c.Recall).Should().Equal(matrix.PerClassRecall, (a, b) => Math.Abs(a - b) < 1e-9);
    }

    [Fact]
    public void Macro_average_is_the_unweighted_mean()
    {
        var classes = PerClassMetrics.From(EvaluationData.Multiclass().ConfusionMatrix);

        var macro = PerClassMetrics.MacroAverage(classes);

        macro.Precision.Should().BeApproximately((5.0 / 7 + 0.75 + 0.8) / 3, 1e-12);
        macro.Recall.Should().BeApproximately((5.0 / 6 + 0.5 + 1.0) / 3, 1e-12);
        macro.F1.Should().BeApproximately((10.0 / 13 + 0.6 + 8.0 / 9) / 3, 1e-12);
        macro.Support.Should().Be(16);
    }

    [Fact]
    public void Binary_matrices_list_the_positive_class_first()
    {
        var metrics = EvaluationData.Binary();

        var classes = PerClassMetrics.From(metrics.ConfusionMatrix, new[] { "positive", "negative" });

        classes[0].Precision.Should().BeApproximately(metrics.PositivePrecision, 1e-9).And.BeApproximately(4.0 / 6, 1e-9);
        classes[0].Recall.Should().BeApproximately(metrics.PositiveRecall, 1e-9).And.BeApproximately(4.0 / 5, 1e-9);
        classes[1].Precision.Should().BeApproximately(metrics.NegativePrecision, 1e-9).And.BeApproximately(3.0 / 4, 1e-9);
        classes[1].Recall.Should().BeApproximately(metrics.NegativeRecall, 1e-9).And.BeApproximately(3.0 / 5, 1e-9);
    }

    [Fact]
    public void A_class_never_predicted_has_zero_precision_and_f1()
    {
        var matrix = EvaluationData.Multiclass(new[]
        {
            new[] { 2, 0, 0 },
            new[] { 1, 1, 0 },
            new[] { 1, 0, 0 },
        }).ConfusionMatrix;

        var classes = PerClassMetrics.From(matrix);

        classes[2].Predicted.Should().Be(0);
        (classes[2].Precision, classes[2].Recall, classes[2].F1).Should().Be((0.0, 0.0, 0.0));
        classes[0].Precision.Should().BeApproximately(0.5, 1e-12);
    }

    [Fact]
    public void Class_names_must_match_the_number_of_classes()
    {
        var matrix = EvaluationData.Multiclass().ConfusionMatrix;

        var act = () => PerClassMetrics.From(matrix, new[] { "a", "b" });

        act.Should().Throw<ArgumentException>().WithMessage("2 class names were given for a confusion matrix of 3 classes.");
    }
}
