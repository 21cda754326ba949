using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Cli.Running;

namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary>
/// The row count behind evaluate's top-line accuracy, on scored rows laid out by hand: unseen labels count as wrong
/// (ML.NET's evaluator leaves them out), rows without a label are skipped. (A non-finite score never reaches the count:
/// scoring stops at it, see NonFiniteScoreTests.)
/// </summary>
public class EvaluationTallyTests
{
    sealed class ScoredRow
    {
        public string EvaluatedRawLabel { get; set; } = "";
        [KeyType(2)] public uint Label { get; set; }
        [VectorType(2)] public float[] Score { get; set; } = Array.Empty<float>();
    }

    static ScoredRow Known(uint classIndex, float p0) => new() { EvaluatedRawLabel = $"c{classIndex}", Label = classIndex, Score = new[] { p0, 1 - p0 } };

    static ScoredRow Missing(string raw, float p0) => new() { EvaluatedRawLabel = raw, Label = uint.MaxValue, Score = new[] { p0, 1 - p0 } };

    static EvaluationReport.RowTally Count(IEnumerable<ScoredRow> rows)
    {
        var ml = new MLContext(0);
        // LoadFromEnumerable reads a [KeyType] uint as the 0-based class index, so uint.MaxValue is the missing key.
        var data = ml.Data.LoadFromEnumerable(rows.ToList());
        return EvaluationReport.RowTally.Count(data, 2);
    }

    [Fact]
    public void Unseen_labels_are_wrong_and_extra_classes_and_rows_without_a_label_are_skipped()
    {
        var rows = new[] { Known(0, 0.9f), Known(0, 0.3f), Known(1, 0.2f), Missing("new", 0.7f), Missing("new", 0.1f), Missing("", 0.5f), Missing("  ", 0.5f) };

        var tally = Count(rows);

        tally.Read.Should().Be(7);
        tally.NoLabel.Should().Be(2);
        tally.Scored.Should().Be(5);
        tally.MicroAccuracy.Should().Be(2.0 / 5);
        tally.MacroAccuracy.Should().Be((0.5 + 1.0 + 0) / 3, "class 0 recall 1/2, class 1 recall 1, the unseen label recall 0");
        var unseen = tally.UnseenLabels(new[] { "c0", "c1" }).Should().ContainSingle().Subject;
        unseen.Label.Should().Be("new");
        unseen.Rows.Should().Be(2);
        unseen.PredictedAs.Should().Equal(new Dictionary<string, long> { ["c0"] = 1, ["c1"] = 1 });
    }
}
