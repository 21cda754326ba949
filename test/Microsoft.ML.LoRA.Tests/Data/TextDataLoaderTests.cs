using System.IO.Compression;
using Microsoft.ML;
using Microsoft.ML.LoRA.Data;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Data;

/// <summary>Labelled text files from ../shared/data (and small files written here) load as text/label data views.</summary>
public class TextDataLoaderTests
{
    readonly MLContext _ml = new(seed: 1);

    static readonly string Sst2Train = SharedData.Data("sst2", "train.tsv");
    static readonly string Sms = SharedData.Data("sms_spam", "SMSSpamCollection");
    static readonly string AgNews = SharedData.Data("ag_news", "test.csv");
    static readonly string ImdbTest = SharedData.Data("imdb", "test.csv.gz");

    [Fact]
    public void Sst2_tsv_is_tab_separated_with_a_header()
    {
        var loaded = TextDataLoader.Load(_ml, Sst2Train, new TextDataFileOptions { TextColumn = "sentence", LabelColumn = "label" });

        loaded.File.Separator.Should().Be('\t');
        loaded.File.HasHeader.Should().BeTrue();
        loaded.File.Columns.Should().Equal("label", "sentence");
        var expected = File.ReadLines(Sst2Train).Skip(1).Select(line => line.Split('\t')).ToList();
        var texts = DataViewRows.Texts(loaded.Data);
        texts.Should().HaveCount(expected.Count);
        texts.Should().Equal(expected.Select(f => f[1]));
        DataViewRows.Labels(loaded.Data).Should().Equal(expected.Select(f => f[0]));
    }

    [Fact]
    public void Usual_column_names_are_found_without_options()
    {
        var loaded = TextDataLoader.Load(_ml, Sst2Train);

        (loaded.TextColumn, loaded.LabelColumn).Should().Be(("sentence", "label"));
        DataViewRows.Texts(loaded.Data)[0].Should().Be("hide new secretions from the parental units");
    }

    [Fact]
    public void Sms_spam_has_no_header_and_its_columns_are_named_by_index()
    {
        var loaded = TextDataLoader.Load(_ml, Sms, new TextDataFileOptions { TextColumn = "1", LabelColumn = "0" });

        loaded.File.HasHeader.Should().BeFalse();
        loaded.File.Columns.Should().Equal("0", "1");
        loaded.File.AllowQuoting.Should().BeFalse("stray quotes in tab-separated text are text");
        var lines = File.ReadLines(Sms).Select(line => line.Split('\t', 2)).ToList();
        // ML.NET's TextLoader drops the spaces that start a field (nine messages start with one); the rest is verbatim.
        DataViewRows.Texts(loaded.Data).Should().Equal(lines.Select(l => l[1].TrimStart(' ')), "every message is read, quotes included");
        DataViewRows.Labels(loaded.Data).Distinct().Should().BeEquivalentTo("ham", "spam");
    }

    [Fact]
    public void Ag_news_csv_keeps_commas_inside_quoted_fields()
    {
        var loaded = TextDataLoader.Load(_ml, AgNews, new TextDataFileOptions { TextColumn = "description", LabelColumn = "label" });

        loaded.File.Separator.Should().Be(',');
        loaded.File.Columns.Should().Equal("label", "title", "description");
        var texts = DataViewRows.Texts(loaded.Data);
        texts.Should().HaveCount(7600);
        texts[1].Should().StartWith("SPACE.com - TORONTO, Canada -- A second\\team of rocketeers competing for the  #36;10 million Ansari X Prize,");
        DataViewRows.Labels(loaded.Data).GroupBy(l => l).Should().HaveCount(4).And.OnlyContain(g => g.Count() == 1900);
    }

    [Fact]
    public void Text_pair_columns_are_read_alongside()
    {
        var loaded = TextDataLoader.Load(_ml, AgNews, new TextDataFileOptions { TextColumn = "title", TextPairColumn = "description" });

        loaded.TextPairColumn.Should().Be("description");
        DataViewRows.Texts(loaded.Data)[0].Should().Be("Fears for T N pension after talks");
        DataViewRows.Column(loaded.Data, LabeledTextColumns.TextPair)[0].Should().StartWith("Unions representing workers at Turner");
    }

    [Fact]
    public void Imdb_gz_is_decompressed_while_streaming()
    {
        var loaded = TextDataLoader.Load(_ml, ImdbTest, new TextDataFileOptions { TextColumn = "text", LabelColumn = "label" });

        loaded.File.Compressed.Should().BeTrue();
        loaded.File.Columns.Should().Equal("label", "rating", "id", "text");
        var labels = DataViewRows.Labels(loaded.Data);
        labels.Should().HaveCount(25_000);
        labels.GroupBy(l => l).Select(g => (g.Key, g.Count())).Should().BeEquivalentTo(new[] { ("0", 12_500), ("1", 12_500) });
        DataViewRows.Texts(loaded.Data)[0].Should().StartWith("I went and saw this movie last night after being coaxed to by a few friends of mine.");
    }

    [Fact]
    public void Jsonl_reads_string_number_and_bool_fields_as_text()
    {
        using var dir = new TempDir();
        var path = dir.File("reviews.jsonl");
        File.WriteAllLines(path, new[]
        {
            """{"text": "good movie", "label": 1, "positive": true, "score": 0.75}""",
            "",
            """{"text": "bad, \"awful\"\nending", "label": 0, "positive": false, "score": -1e-3}""",
        });

        var loaded = TextDataLoader.Load(_ml, path, new TextDataFileOptions { TextColumn = "text", LabelColumn = "label" });
        var byBool = TextDataLoader.Load(_ml, path, new TextDataFileOptions { TextColumn = "text", LabelColumn = "positive" });
        var byNumber = TextDataLoader.Load(_ml, path, new TextDataFileOptions { TextColumn = "text", LabelColumn = "score" });

        loaded.File.Format.Should().Be(DataFileFormat.JsonLines);
        loaded.File.Columns.Should().Equal("text", "label", "positive", "score");
        DataViewRows.Texts(loaded.Data).Should().Equal("good movie", "bad, \"awful\"\nending");
        DataViewRows.Labels(loaded.Data).Should().Equal("1", "0");
        DataViewRows.Labels(byBool.Data).Should().Equal("true", "false");
        DataViewRows.Labels(byNumber.Data).Should().Equal("0.75", "-1e-3");
    }

    [Fact]
    public void Gzipped_jsonl_is_read_like_plain_jsonl()
    {
        using var dir = new TempDir();
        var path = dir.File("data.jsonl.gz");
        using (var gz = new GZipStream(File.Create(path), CompressionLevel.Fastest))
        using (var writer = new StreamWriter(gz))
        {
            writer.WriteLine("""{"sentence": "one", "label": "a"}""");
            writer.WriteLine("""{"sentence": "two", "label": "b"}""");
        }

        var loaded = TextDataLoader.Load(_ml, path);

        DataViewRows.Texts(loaded.Data).Should().Equal("one", "two");
        DataViewRows.Labels(loaded.Data).Should().Equal("a", "b");
    }

    [Fact]
    public void Jsonl_row_missing_a_field_is_reported_with_its_line_number()
    {
        using var dir = new TempDir();
        var path = dir.File("broken.jsonl");
        File.WriteAllLines(path, new[] { """{"text": "a", "label": 1}""", """{"text": "b"}""" });

        var loaded = TextDataLoader.Load(_ml, path);
        var act = () => DataViewRows.Labels(loaded.Data);

        act.Should().Throw<InvalidDataException>().WithMessage("*line 2 has no 'label' field*");
    }

    [Fact]
    public void Quoted_csv_fields_may_hold_line_breaks_and_doubled_quotes()
    {
        using var dir = new TempDir();
        var path = dir.File("multiline.csv");
        File.WriteAllText(path, "text,label\n\"first line\nsecond line, with a comma\",pos\n\"she said \"\"hi\"\"\",neg\nplain,pos\n");

        var loaded = TextDataLoader.Load(_ml, path);

        DataViewRows.Texts(loaded.Data).Should().Equal("first line\nsecond line, with a comma", "she said \"hi\"", "plain");
        DataViewRows.Labels(loaded.Data).Should().Equal("pos", "neg", "pos");
    }

    [Theory]
    [InlineData(';', "semicolon.txt")]
    [InlineData('|', "pipe.txt")]
    [InlineData(',', "comma.txt")]
    [InlineData('\t', "tab.txt")]
    public void Separator_is_detected(char separator, string fileName)
    {
        using var dir = new TempDir();
        var path = dir.File(fileName);
        File.WriteAllLines(path, new[] { $"id{separator}review{separator}stars", $"1{separator}great value{separator}5", $"2{separator}broke in a week{separator}1", $"3{separator}fine{separator}3" });

        var file = TextDataLoader.Describe(path);

        file.Separator.Should().Be(separator);
        file.HasHeader.Should().BeTrue();
        file.Columns.Should().Equal("id", "review", "stars");
    }

    [Fact]
    public void Header_can_be_forced_off()
    {
        using var dir = new TempDir();
        var path = dir.File("data.csv");
        File.WriteAllLines(path, new[] { "text,label", "good,pos" });

        var loaded = TextDataLoader.Load(_ml, path, new TextDataFileOptions { HasHeader = false, TextColumn = "0", LabelColumn = "1" });

        DataViewRows.Texts(loaded.Data).Should().Equal("text", "good");
    }

    [Fact]
    public void Missing_column_error_lists_the_available_columns()
    {
        var act = () => TextDataLoader.Load(_ml, Sst2Train, new TextDataFileOptions { TextColumn = "review" });

        var error = act.Should().Throw<DataColumnNotFoundException>().Which;
        error.Column.Should().Be("review");
        error.AvailableColumns.Should().Equal("label", "sentence");
        error.Message.Should().Be($"Text column 'review' not found in {Sst2Train}. Available columns: 'label', 'sentence'. " +
                                  "Columns can also be given by 0-based index (0-1).");
    }

    [Fact]
    public void Out_of_range_index_in_a_headerless_file_explains_the_naming()
    {
        var act = () => TextDataLoader.Load(_ml, Sms, new TextDataFileOptions { TextColumn = "2", LabelColumn = "0" });

        act.Should().Throw<DataColumnNotFoundException>()
            .WithMessage("*Available columns: '0', '1'. The file has no header row, so its columns are named by 0-based index (0-1).");
    }

    [Fact]
    public void Headerless_file_without_column_options_asks_for_them()
    {
        var act = () => TextDataLoader.Load(_ml, Sms);

        act.Should().Throw<DataColumnNotFoundException>().WithMessage("No text column was named*Available columns: '0', '1'*");
    }

    [Fact]
    public void Text_and_label_must_be_different_columns()
    {
        var act = () => TextDataLoader.Load(_ml, Sst2Train, new TextDataFileOptions { TextColumn = "sentence", LabelColumn = "1" });

        act.Should().Throw<ArgumentException>().WithMessage("*'sentence' is chosen twice*");
    }

    [Fact]
    public void Predict_data_may_have_no_label()
    {
        var loaded = TextDataLoader.Load(_ml, SharedData.Data("sst2", "test.tsv"), new TextDataFileOptions { ReadLabel = false });

        loaded.TextColumn.Should().Be("content");
        loaded.LabelColumn.Should().BeNull();
        loaded.Data.Schema.Select(c => c.Name).Should().Equal(LabeledTextColumns.Text);
    }

    [Fact]
    public void Missing_file_is_reported_as_not_found()
    {
        var act = () => TextDataLoader.Load(_ml, "/no/such/file.tsv");

        act.Should().Throw<FileNotFoundException>().WithMessage("Data file not found: /no/such/file.tsv");
    }

    [Fact]
    public void Loading_reads_nothing_until_the_view_is_read()
    {
        using var dir = new TempDir();
        var path = dir.File("late.jsonl");
        File.WriteAllLines(path, new[] { """{"text": "a", "label": 1}""" });
        var loaded = TextDataLoader.Load(_ml, path);

        File.AppendAllLines(path, new[] { """{"text": "b", "label": 0}""" });

        DataViewRows.Texts(loaded.Data).Should().Equal("a", "b");
    }
}
