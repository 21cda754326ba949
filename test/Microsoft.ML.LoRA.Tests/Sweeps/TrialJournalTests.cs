using System.Text.Json;
using Microsoft.ML.LoRA.Sweeps;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Sweeps;

/// <summary>The append-only trials.jsonl journal: records round-trip, a partial last line is cut off, damage elsewhere is reported.</summary>
public class TrialJournalTests
{
    static TrialRecord Record(string id, double accuracy) => new()
    {
        Id = id, Rung = 0, Sequence = 0, Status = TrialStatus.Succeeded, Metric = "Accuracy", Objective = accuracy,
        Metrics = new TrialMetrics(accuracy, accuracy - 0.1, 0.42, null, null), Model = $"trials/{id}/model.zip",
        Configuration = new LoraSweepParameters { Rank = 2 }, FinishedAt = DateTimeOffset.UnixEpoch,
    };

    [Fact]
    public void Appended_records_read_back_with_their_metrics()
    {
        using var dir = new TempDir();
        var path = dir.File("trials.jsonl");
        var journal = TrialJournal.Open(path);
        journal.Records.Should().BeEmpty();

        journal.Append(Record("a", 0.75));
        journal.Append(Record("b", 0.8125));
        var reopened = TrialJournal.Open(path);

        reopened.Records.Select(r => r.Id).Should().Equal("a", "b");
        reopened.Records[1].Metrics.Should().Be(new TrialMetrics(0.8125, 0.8125 - 0.1, 0.42, null, null));
        reopened.Records[1].Configuration!.Rank.Should().Be(2);
        reopened.DroppedPartialLine.Should().BeFalse();
        File.ReadAllLines(path).Should().HaveCount(2);
    }

    [Fact]
    public void A_half_written_last_line_is_ignored_and_cut_off_so_the_next_record_stays_valid()
    {
        using var dir = new TempDir();
        var path = dir.File("trials.jsonl");
        var journal = TrialJournal.Open(path);
        journal.Append(Record("a", 0.75));
        var whole = JsonSerializer.Serialize(Record("b", 0.5), SweepJson.Line);
        File.AppendAllText(path, whole[..(whole.Length / 2)]);

        var reopened = TrialJournal.Open(path);
        reopened.Append(Record("c", 0.9));

        reopened.Records.Select(r => r.Id).Should().Equal("a");
        reopened.DroppedPartialLine.Should().BeTrue();
        TrialJournal.Open(path).Records.Select(r => r.Id).Should().Equal("a", "c");
        File.ReadAllLines(path).Should().HaveCount(2).And.AllSatisfy(l => JsonDocument.Parse(l).Should().NotBeNull());
    }

    [Fact]
    public void A_damaged_complete_line_is_reported_with_its_line_number()
    {
        using var dir = new TempDir();
        var path = dir.File("trials.jsonl");
        var journal = TrialJournal.Open(path);
        journal.Append(Record("a", 0.75));
        File.AppendAllText(path, "{not json\n");
        journal.Append(Record("c", 0.9));

        var act = () => TrialJournal.Open(path);

        act.Should().Throw<InvalidDataException>().WithMessage("*line 2*Delete that line*");
    }
}
