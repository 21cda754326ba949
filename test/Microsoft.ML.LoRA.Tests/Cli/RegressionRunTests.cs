using System.Text.Json;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Cli.Running;
using Microsoft.ML.LoRA.Tests.Support;
using SharedData = Microsoft.ML.LoRA.Tests.Support.SharedData;

namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary>
/// <c>lora train --task regression</c> on IMDb ratings writes the five regression figures; evaluate and predict read a
/// regression model.zip as one; a label that is not a number is a clear error naming the file and the row.
/// </summary>
public class RegressionRunTests
{
    static readonly string[] Figures = { "rmse", "mae", "rSquared", "pearson", "spearman" };

    [Fact]
    public void Train_evaluate_and_predict_a_regression_model()
    {
        using var dir = new TempDir();
        var train = ImdbRatings.WriteCsv(dir.File("train.csv"), ImdbRatings.Read("train.csv.gz", 64, seed: 3));
        var test = ImdbRatings.WriteCsv(dir.File("test.csv"), ImdbRatings.Read("test.csv.gz", 24, seed: 4));
        var run = dir.File("run");

        var trained = CliRun.Lora("train", "--task", "regression", "--model", SharedData.PretrainedBert, "--data", train, "--validation", test,
            "--label-column", "rating", "--max-length", "32", "--epochs", "1", "--batch-size", "16", "--output", run, "--json");

        trained.ExitCode.Should().Be(ExitCodes.Success, trained.Stderr);
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "metrics.json")));
        var root = metrics.RootElement;
        root.GetProperty("task").GetString().Should().Be("regression");
        using (var options = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "options.json"))))
            options.RootElement.GetProperty("task").GetString().Should().Be("regression", "options.json records the task, so the run can be repeated");
        root.GetProperty("rowsScored").GetInt64().Should().Be(24);
        foreach (var figure in Figures) root.GetProperty(figure).ValueKind.Should().Be(JsonValueKind.Number, figure);
        root.GetProperty("rmse").GetDouble().Should().BeGreaterThan(0);
        root.GetProperty("trainingMeanRmse").GetDouble().Should().BeGreaterThan(0);
        root.GetProperty("training").GetProperty("trainableParameters").GetInt64().Should().BeGreaterThan(0);
        var printed = CliRun.Lora("train", "--task", "regression", "--model", SharedData.PretrainedBert, "--data", train, "--label-column", "rating",
            "--max-length", "16", "--epochs", "1", "--output", dir.File("run2"));
        printed.ExitCode.Should().Be(ExitCodes.Success, printed.Stderr);
        printed.Stdout.Should().Contain("RMSE").And.Contain("MAE").And.Contain("R²").And.Contain("Pearson").And.Contain("Spearman");

        var evaluated = CliRun.Lora("evaluate", "--model", Path.Combine(run, "model.zip"), "--data", test, "--label-column", "rating", "--json");
        evaluated.ExitCode.Should().Be(ExitCodes.Success, evaluated.Stderr);
        using var again = JsonDocument.Parse(evaluated.Stdout);
        foreach (var figure in Figures)
            again.RootElement.GetProperty(figure).GetRawText().Should().Be(root.GetProperty(figure).GetRawText(), figure);

        var predicted = CliRun.Lora("predict", "--model", Path.Combine(run, "model.zip"), "--data", test);
        predicted.ExitCode.Should().Be(ExitCodes.Success, predicted.Stderr);
        var lines = predicted.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines[0].Trim().Should().Be("row\tscore");
        lines.Should().HaveCount(25);
        lines.Skip(1).Select(l => float.Parse(l.Split('\t')[1], System.Globalization.CultureInfo.InvariantCulture)).Should().OnlyContain(v => float.IsFinite(v));
    }

    [Fact]
    public void A_label_that_is_not_a_number_is_an_error_naming_the_file_and_the_row()
    {
        using var dir = new TempDir();
        var rows = ImdbRatings.Read("test.csv.gz", 6, seed: 5);
        var data = ImdbRatings.WriteCsv(dir.File("bad.csv"), rows, r => ReferenceEquals(r, rows[3]) ? "great" : r.Label.ToString(System.Globalization.CultureInfo.InvariantCulture));

        var result = CliRun.Lora("train", "--task", "regression", "--model", SharedData.PretrainedBert, "--data", data, "--label-column", "rating",
            "--max-length", "16", "--epochs", "1", "--output", dir.File("run"));

        result.ExitCode.Should().Be(ExitCodes.InvalidInput, result.Stderr);
        result.Stderr.Should().Contain("bad.csv").And.Contain("data row 4").And.Contain("'great'").And.Contain("not a number");
    }

    [Fact]
    public void Correlations_match_hand_computed_values()
    {
        Correlation.Pearson(new double[] { 1, 2, 3, 4 }, new double[] { 2, 4, 6, 8 }).Should().BeApproximately(1, 1e-12);
        Correlation.Pearson(new double[] { 1, 2, 3 }, new double[] { 3, 2, 1 }).Should().BeApproximately(-1, 1e-12);
        // Spearman is Pearson on ranks: monotone but not linear is still 1; ties take their mean rank.
        Correlation.Spearman(new double[] { 1, 2, 3, 4 }, new double[] { 1, 8, 27, 64 }).Should().BeApproximately(1, 1e-12);
        Correlation.Ranks(new double[] { 10, 20, 20, 30 }).Should().Equal(1, 2.5, 2.5, 4);
        double.IsNaN(Correlation.Pearson(new double[] { 1, 1, 1 }, new double[] { 1, 2, 3 })).Should().BeTrue("a constant series has no correlation");
    }
}
