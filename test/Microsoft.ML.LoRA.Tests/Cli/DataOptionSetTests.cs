using System.CommandLine;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Cli.Options;
using Microsoft.ML.LoRA.Data;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Cli;

using Command = System.CommandLine.Command; // Microsoft.ML.Command (a namespace) would hide it here

/// <summary>
/// The shared data options (for train, evaluate, predict, sweep) parse into a <see cref="DataSelection"/> that loads
/// the file and its validation rows.
/// </summary>
public class DataOptionSetTests
{
    static readonly string Sst2Train = SharedData.Data("sst2", "train.tsv");
    static readonly string Sst2Dev = SharedData.Data("sst2", "dev.tsv");
    static readonly string Sms = SharedData.Data("sms_spam", "SMSSpamCollection");

    static (DataOptionSet Set, ParseResult Parse) Parse(bool withLabel, params string[] args)
    {
        var set = new DataOptionSet();
        var command = new Command("test");
        set.AddTo(command, withLabel: withLabel);
        return (set, command.Parse(args));
    }

    static DataSelection Read(params string[] args)
    {
        var (set, parse) = Parse(true, args);
        parse.Errors.Should().BeEmpty();
        return set.Read(parse);
    }

    static long Rows(IDataView data) => data.GetColumn<string>(LabeledTextColumns.Text).LongCount();

    [Fact]
    public void Column_and_layout_options_reach_the_file_options()
    {
        var selection = Read("--data", Sms, "--text-column", "1", "--label-column", "0", "--separator", "tab", "--header", "no", "--seed", "7");

        selection.DataPath.Should().Be(Sms);
        selection.FileOptions.TextColumn.Should().Be("1");
        selection.FileOptions.LabelColumn.Should().Be("0");
        selection.FileOptions.Separator.Should().Be('\t');
        selection.FileOptions.HasHeader.Should().BeFalse();
        selection.Seed.Should().Be(7);
        selection.ValidationPath.Should().BeNull();
        selection.ValidationFraction.Should().BeNull();
    }

    [Fact]
    public void Layout_defaults_to_detection_and_seed_to_42()
    {
        var selection = Read("--data", Sst2Train);

        selection.FileOptions.Separator.Should().BeNull();
        selection.FileOptions.HasHeader.Should().BeNull();
        selection.Seed.Should().Be(DataOptionSet.DefaultSeed);
    }

    [Fact]
    public void Validation_file_is_read_with_the_same_column_options()
    {
        // train.tsv calls its text column "sentence", dev.tsv "content": both are usual names, found without options.
        var loaded = Read("--data", Sst2Train, "--validation", Sst2Dev).Load(new MLContext(1));

        Rows(loaded.Validation!).Should().Be(File.ReadLines(Sst2Dev).Count() - 1);
        loaded.ValidationFile!.Path.Should().Be(Path.GetFullPath(Sst2Dev));
        loaded.Train.Should().BeSameAs(loaded.Source.Data);
    }

    [Fact]
    public void Validation_file_without_the_named_column_is_reported()
    {
        var selection = Read("--data", Sst2Train, "--text-column", "sentence", "--validation", Sst2Dev);

        var act = () => selection.Load(new MLContext(1));

        act.Should().Throw<DataColumnNotFoundException>().WithMessage($"*'sentence' not found in {Sst2Dev}*'label', 'content'*");
    }

    [Fact]
    public void Validation_fraction_holds_out_a_stratified_share()
    {
        var loaded = Read("--data", Sms, "--text-column", "1", "--label-column", "0", "--validation-fraction", "0.1").Load(new MLContext(1));

        long total = File.ReadLines(Sms).Count();
        long validation = Rows(loaded.Validation!);
        (Rows(loaded.Train) + validation).Should().Be(total);
        validation.Should().BeCloseTo((long)Math.Round(total * 0.1), 2);
    }

    [Fact]
    public void Without_validation_options_there_is_no_validation_set()
    {
        Read("--data", Sst2Dev).Load(new MLContext(1)).Validation.Should().BeNull();
    }

    [Fact]
    public void Validation_file_and_fraction_together_are_a_parse_error()
    {
        var (_, parse) = Parse(true, "--data", Sst2Train, "--validation", Sst2Dev, "--validation-fraction", "0.2");

        parse.Errors.Select(e => e.Message).Should().Contain(m => m.Contains("either --validation FILE or --validation-fraction F"));
    }

    [Theory]
    [InlineData("--validation-fraction", "1.5")]
    [InlineData("--validation-fraction", "0")]
    [InlineData("--seed", "x")]
    [InlineData("--separator", "space")]
    [InlineData("--header", "maybe")]
    public void Invalid_values_are_parse_errors_naming_the_option(string option, string value)
    {
        var (_, parse) = Parse(true, "--data", Sst2Train, option, value);

        parse.Errors.Should().NotBeEmpty();
        string.Join(" ", parse.Errors.Select(e => e.Message)).Should().Contain(value);
    }

    [Fact]
    public void Data_is_required()
    {
        Parse(true).Parse.Errors.Select(e => e.Message).Should().Contain(m => m.Contains("--data"));
    }

    [Fact]
    public void Without_label_option_no_label_is_read()
    {
        var (set, parse) = Parse(false, "--data", Sst2Dev);

        var loaded = set.Read(parse).Load(new MLContext(1));

        loaded.Source.LabelColumn.Should().BeNull();
        loaded.Train.Schema.GetColumnOrNull(LabeledTextColumns.Label).Should().BeNull();
    }
}
