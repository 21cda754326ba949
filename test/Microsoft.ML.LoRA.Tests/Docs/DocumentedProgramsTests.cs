using Microsoft.ML.LoRA.Tests.Support;
using Xunit.Abstractions;

namespace Microsoft.ML.LoRA.Tests.Docs;

/// <summary>
/// The complete C# programs the documentation shows compile against the library as a package consumer builds it (the
/// package's build steps imported, the library referenced) and run: on SST-2 rows, with the small pre-trained BERT
/// from ../shared in place of the Hub id the text names (this machine has no Hub).
/// </summary>
public class DocumentedProgramsTests(ITestOutputHelper output)
{
    const string HubModel = "\"google/bert_uncased_L-2_H-128_A-2\"";

    [Fact]
    public void ReadmeQuickstartCompilesAndRuns()
    {
        var stdout = BuildAndRun(Program("README.md", "## C# quickstart"));

        stdout.Should().MatchRegex(@"accuracy \d+(\.\d)?\s?%");
        stdout.Trim().Split('\n').Last().Trim().Should().BeOneOf("0", "1");   // the predicted label of the example review
    }

    [Fact]
    public void MigrationGuideProgramRuns()
    {
        var stdout = BuildAndRun(Program(Path.Combine("docs", "migrating-from-textclassification.md"), "After, with LoRA"));

        stdout.Should().MatchRegex(@"accuracy \d+(\.\d)?\s?%");
    }

    static string Program(string file, string marker)
    {
        var program = ConsumerProgram.FromDocs(file, marker);
        program.Should().Contain(HubModel, "the program names the default Hub model, which the test points at a local copy");
        return program.Replace(HubModel, "\"" + SharedData.PretrainedBert + "\"", StringComparison.Ordinal);
    }

    string BuildAndRun(string program)
    {
        using var dir = new TempDir();
        // A few hundred SST-2 rows in the layout the program reads: header, label, text.
        TextData.WriteTsv(dir.File("train.tsv"), TextData.Sst2("train.tsv", 0, 400));
        TextData.WriteTsv(dir.File("test.tsv"), TextData.Sst2("dev.tsv", 0, 100));
        return ConsumerProgram.BuildAndRun(output, dir.Path, program, "Microsoft.ML.LoRA/Microsoft.ML.LoRA.csproj", imports: true);
    }
}
