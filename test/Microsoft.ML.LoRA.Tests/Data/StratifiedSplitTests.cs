using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Data;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Data;

/// <summary>The stratified split keeps every label's share in both halves and is reproducible by seed.</summary>
public class StratifiedSplitTests
{
    readonly MLContext _ml = new(seed: 1);

    IDataView Sms() => TextDataLoader.Load(_ml, SharedData.Data("sms_spam", "SMSSpamCollection"),
        new TextDataFileOptions { TextColumn = "1", LabelColumn = "0" }).Data;

    static double SpamShare(IEnumerable<string> labels)
    {
        var list = labels.ToList();
        return (double)list.Count(l => l == "spam") / list.Count;
    }

    [Fact]
    public void Split_keeps_each_label_share_in_both_halves()
    {
        var data = Sms();
        double overall = SpamShare(DataViewRows.Labels(data));

        var split = StratifiedSplit.Split(data, validationFraction: 0.2, seed: 42);

        var train = DataViewRows.Labels(split.Train);
        var validation = DataViewRows.Labels(split.Validation);
        SpamShare(train).Should().BeApproximately(overall, 0.002);
        SpamShare(validation).Should().BeApproximately(overall, 0.002);
        ((double)validation.Count / (train.Count + validation.Count)).Should().BeApproximately(0.2, 0.001);
        split.Validation.GetRowCount().Should().Be(validation.Count);
    }

    [Fact]
    public void Halves_are_disjoint_and_cover_every_row()
    {
        var rows = Enumerable.Range(0, 300).Select(i => new Row { Id = i, Label = (i % 10) switch { < 6 => "a", < 9 => "b", _ => "c" } }).ToList();
        var data = _ml.Data.LoadFromEnumerable(rows);

        var split = StratifiedSplit.Split(data, 0.25, seed: 3);

        var train = split.Train.GetColumn<int>("Id").ToList();
        var validation = split.Validation.GetColumn<int>("Id").ToList();
        train.Intersect(validation).Should().BeEmpty();
        train.Concat(validation).Should().BeEquivalentTo(Enumerable.Range(0, 300));
        train.Should().BeInAscendingOrder("the halves keep the source order");
        validation.Select(id => rows[id].Label).GroupBy(l => l).ToDictionary(g => g.Key, g => g.Count())
            .Should().BeEquivalentTo(new Dictionary<string, int> { ["a"] = 45, ["b"] = 23, ["c"] = 8 }); // round(180·¼), round(90·¼), round(30·¼)
    }

    [Fact]
    public void Same_seed_gives_the_same_split()
    {
        var first = StratifiedSplit.Split(Sms(), 0.1, seed: 7);
        var second = StratifiedSplit.Split(Sms(), 0.1, seed: 7);

        DataViewRows.Texts(first.Validation).Should().Equal(DataViewRows.Texts(second.Validation));
    }

    [Fact]
    public void Another_seed_gives_another_split()
    {
        var first = StratifiedSplit.Split(Sms(), 0.1, seed: 7);
        var other = StratifiedSplit.Split(Sms(), 0.1, seed: 8);

        DataViewRows.Texts(first.Validation).Should().NotEqual(DataViewRows.Texts(other.Validation));
    }

    [Fact]
    public void A_rare_label_keeps_a_row_on_each_side()
    {
        var rows = Enumerable.Range(0, 102).Select(i => new Row { Id = i, Label = i < 100 ? "common" : "rare" }).ToList();

        var split = StratifiedSplit.Split(_ml.Data.LoadFromEnumerable(rows), 0.05, seed: 1);

        DataViewRows.Labels(split.Train).Should().Contain("rare");
        DataViewRows.Labels(split.Validation).Should().Contain("rare");
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    [InlineData(-0.1)]
    [InlineData(double.NaN)]
    public void Fraction_must_be_strictly_between_zero_and_one(double fraction)
    {
        var act = () => StratifiedSplit.Split(Sms(), fraction, seed: 1);

        act.Should().Throw<ArgumentOutOfRangeException>();
    }

    [Fact]
    public void Missing_label_column_lists_the_columns()
    {
        var act = () => StratifiedSplit.Split(Sms(), 0.1, seed: 1, labelColumn: "Class");

        act.Should().Throw<DataColumnNotFoundException>().WithMessage("*'Class'*Available columns: 'Text', 'Label'*");
    }

    sealed class Row
    {
        public int Id { get; set; }
        public string Label { get; set; } = "";
    }
}
