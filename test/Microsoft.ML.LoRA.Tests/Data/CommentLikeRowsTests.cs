using Microsoft.ML;
using Microsoft.ML.LoRA.Data;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Data;

/// <summary>
/// ML.NET's TextLoader skips lines that start with "//" (anywhere) or "#" (before the first row) as comments; the
/// loader reads them as the rows they are, with the same values.
/// </summary>
public class CommentLikeRowsTests : IDisposable
{
    readonly MLContext _ml = new(seed: 1);
    readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    string Write(string name, string content)
    {
        var path = _dir.File(name);
        File.WriteAllText(path, content);
        return path;
    }

    [Fact]
    public void Tsv_rows_starting_with_slashes_or_a_hash_are_read_verbatim()
    {
        var path = Write("a.tsv", "text\tlabel\n// TODO fix this\tcode\n#blessed morning\tsocial\nplain\tother\n//\tx\n");

        var data = TextDataLoader.Load(_ml, path, new TextDataFileOptions { TextColumn = "text", LabelColumn = "label" }).Data;

        DataViewRows.Texts(data).Should().Equal("// TODO fix this", "#blessed morning", "plain", "//");
        DataViewRows.Labels(data).Should().Equal("code", "social", "other", "x");
    }

    [Fact]
    public void A_headerless_file_keeps_a_first_row_that_starts_with_a_hash()
    {
        var path = Write("b.tsv", "#1 song of the year\tpos\n// comment-like\tneg\nnot a header at all\tpos\n");

        var data = TextDataLoader.Load(_ml, path, new TextDataFileOptions { TextColumn = "0", LabelColumn = "1", HasHeader = false }).Data;

        DataViewRows.Texts(data).Should().Equal("#1 song of the year", "// comment-like", "not a header at all");
    }

    [Fact]
    public void A_header_that_starts_with_a_hash_is_the_header()
    {
        var path = Write("c.tsv", "#text\tlabel\nfirst\ta\nsecond\tb\n");

        var data = TextDataLoader.Load(_ml, path, new TextDataFileOptions { TextColumn = "#text", LabelColumn = "label" }).Data;

        DataViewRows.Texts(data).Should().Equal("first", "second");
    }

    [Fact]
    public void Csv_multi_line_fields_keep_continuation_lines_that_start_with_slashes_as_written()
    {
        var path = Write("d.csv", "text,label\n\"line one\n// line two, with a comma\",a\n//row,b\n\"q \"\"x\"\"\",c\n");

        var data = TextDataLoader.Load(_ml, path, new TextDataFileOptions { TextColumn = "text", LabelColumn = "label" }).Data;

        DataViewRows.Texts(data).Should().Equal("line one\n// line two, with a comma", "//row", "q \"x\"");
        DataViewRows.Labels(data).Should().Equal("a", "b", "c");
    }

    [Fact]
    public void Read_by_character_and_by_line_give_the_same_text()
    {
        const string text = "a\tb\n//c\td\n#e\n\nf\r\ng";
        using var byLine = new CommentSafeLineReader(new StringReader(text), '\t', quoting: false);
        using var byChar = new CommentSafeLineReader(new StringReader(text), '\t', quoting: false);

        var lines = new List<string>();
        while (byLine.ReadLine() is { } line) lines.Add(line);
        var chars = byChar.ReadToEnd();

        lines.Should().Equal("a\tb", " //c\td", " #e", "", "f", "g");
        chars.Should().Be(string.Join("\n", lines) + "\n");
    }
}
