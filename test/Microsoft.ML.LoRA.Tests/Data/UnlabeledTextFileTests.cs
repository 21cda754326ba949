using Microsoft.ML.LoRA.Data;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Data;

/// <summary>Texts without labels come from a text column of any data file, or from every line of a plain text file.</summary>
public class UnlabeledTextFileTests
{
    [Fact]
    public void Every_line_of_a_plain_text_file_is_a_text()
    {
        using var dir = new TempDir();
        var path = dir.File("notes.txt");
        File.WriteAllText(path, "Patient admitted today\n\nBP 120/80, stable\nno \"fever\"; discharged\n");

        UnlabeledTextFile.Read(path).Should().Equal("Patient admitted today", "BP 120/80, stable", "no \"fever\"; discharged");
    }

    [Fact]
    public void A_one_column_file_has_a_header_only_when_its_first_line_names_the_text_column()
    {
        using var dir = new TempDir();
        var headed = dir.File("headed.csv");
        File.WriteAllText(headed, "text\nfirst message\nsecond message\n");
        var bare = dir.File("bare.csv");
        File.WriteAllText(bare, "first message\nsecond message\n");

        UnlabeledTextFile.Read(headed).Should().Equal("first message", "second message");
        UnlabeledTextFile.Read(bare).Should().Equal("first message", "second message");
        FluentActions.Invoking(() => UnlabeledTextFile.Read(bare, new TextDataFileOptions { TextColumn = "body" }).ToList())
            .Should().Throw<DataColumnNotFoundException>().WithMessage("*body*");
    }

    [Fact]
    public void The_text_column_of_a_labelled_file_is_read_and_its_label_ignored()
    {
        var sms = SharedData.Data("sms_spam", "SMSSpamCollection");

        var texts = UnlabeledTextFile.Read(sms, new TextDataFileOptions { TextColumn = "1", HasHeader = false }).Take(3).ToList();

        texts.Should().Equal(TextData.SmsSpam(0, 3).Select(r => r.Text));
        FluentActions.Invoking(() => UnlabeledTextFile.Read(sms).ToList()).Should().Throw<DataColumnNotFoundException>().WithMessage("*text column*");
    }

    [Fact]
    public void Json_lines_are_read_by_field_name()
    {
        using var dir = new TempDir();
        var path = dir.File("notes.jsonl");
        File.WriteAllLines(path, new[] { """{"id": 1, "body": "one"}""", """{"id": 2, "body": "two"}""" });

        UnlabeledTextFile.Read(path, new TextDataFileOptions { TextColumn = "body" }).Should().Equal("one", "two");
    }
}
