using Microsoft.ML.LoRA.Cli.Reporting;

namespace Microsoft.ML.LoRA.Tests.Cli.Reporting;

/// <summary>The metric tables show ML.NET's figures, by name, to four decimals.</summary>
public class MetricsTablesTests
{
    [Fact]
    public void Multiclass_table_shows_accuracy_and_log_loss()
    {
        var metrics = EvaluationData.Multiclass();

        var text = SpectreText.Render(MetricsTable.Multiclass(metrics, "Validation"));

        metrics.MicroAccuracy.Should().BeApproximately(12.0 / 16, 1e-12);
        SpectreText.Row(text, "Micro accuracy")[1].Should().Be("0.7500");
        SpectreText.Row(text, "Macro accuracy")[1].Should().Be("0.7778"); // mean recall (5/6 + 1/2 + 1) / 3
        SpectreText.Row(text, "Log-loss")[1].Should().Be(MetricsTable.Format(metrics.LogLoss));
        SpectreText.Row(text, "Log-loss reduction")[1].Should().Be(MetricsTable.Format(metrics.LogLossReduction));
        text.Should().Contain("Validation");
    }

    [Fact]
    public void Binary_table_shows_both_classes_and_calibration()
    {
        var metrics = EvaluationData.Binary();

        var text = SpectreText.Render(MetricsTable.Binary(metrics));

        SpectreText.Row(text, "Accuracy")[1].Should().Be("0.7000"); // (4 + 3) / 10
        SpectreText.Row(text, "Positive precision")[1].Should().Be("0.6667");
        SpectreText.Row(text, "Positive recall")[1].Should().Be("0.8000");
        SpectreText.Row(text, "F1 score")[1].Should().Be(MetricsTable.Format(metrics.F1Score)).And.Be("0.7273"); // 2·(2/3)(4/5)/(2/3 + 4/5)
        SpectreText.Row(text, "AUC (ROC)")[1].Should().Be(MetricsTable.Format(metrics.AreaUnderRocCurve));
        SpectreText.Row(text, "Log-loss")[1].Should().Be(MetricsTable.Format(metrics.LogLoss));
    }

    [Fact]
    public void Undefined_values_show_as_not_available()
    {
        MetricsTable.Format(double.NaN).Should().Be("n/a");
        MetricsTable.Format(0.123456).Should().Be("0.1235");
    }

    [Fact]
    public void Confusion_matrix_table_shows_counts_recall_and_precision()
    {
        var matrix = EvaluationData.Multiclass().ConfusionMatrix;

        var text = SpectreText.Render(ConfusionMatrixTable.Build(matrix, new[] { "World", "Sports", "Business" }));

        SpectreText.Row(text, "World").Should().Equal("World", "5", "1", "0", "0.8333");
        SpectreText.Row(text, "Sports").Should().Equal("Sports", "2", "3", "1", "0.5000");
        SpectreText.Row(text, "Business").Should().Equal("Business", "0", "0", "4", "1.0000");
        SpectreText.Row(text, "Precision").Should().Equal("Precision", "0.7143", "0.7500", "0.8000", "");
        text.Should().Contain("Actual \\ Predicted");
    }

    [Fact]
    public void Per_class_table_ends_with_the_macro_average()
    {
        var classes = PerClassMetrics.From(EvaluationData.Multiclass().ConfusionMatrix);

        var text = SpectreText.Render(PerClassMetricsTable.Build(classes));

        SpectreText.Row(text, "0").Should().Equal("0", "0.7143", "0.8333", "0.7692", "6");
        SpectreText.Row(text, "2").Should().Equal("2", "0.8000", "1.0000", "0.8889", "4");
        SpectreText.Row(text, "Macro average").Should().Equal("Macro average", "0.7548", "0.7778", "0.7527", "16");
    }
}
