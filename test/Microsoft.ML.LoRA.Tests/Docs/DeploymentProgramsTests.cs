using Microsoft.ML.LoRA.Tests.Export;
using Microsoft.ML.LoRA.Tests.Support;
using Xunit.Abstractions;

namespace Microsoft.ML.LoRA.Tests.Docs;

/// <summary>
/// The scoring programs of docs/deployment.md compile against Microsoft.ML.LoRA.Onnx alone (as a package consumer
/// builds them) and run on an export of a classifier fitted on SMS spam, printing the label the scorer gives their text.
/// </summary>
public class DeploymentProgramsTests(SpamClassifierExport export, ITestOutputHelper output) : IClassFixture<SpamClassifierExport>
{
    const string Folder = "\"onnx/sms\"";
    const string Text = "URGENT! You have won a FREE prize. Text CLAIM to 87121 now";

    [Theory]
    [InlineData("## Scoring from plain C#")]
    [InlineData("## Scoring in an ML.NET pipeline")]
    public void The_documented_program_compiles_against_the_scorer_alone_and_runs(string section)
    {
        var program = ConsumerProgram.FromDocs(Path.Combine("docs", "deployment.md"), section);
        program.Should().Contain(Folder, "the test points the documented folder at a real export").And.Contain(Text);
        using var classifier = Microsoft.ML.LoRA.Onnx.OnnxTextClassifier.Load(export.Fp32Folder);
        using var dir = new TempDir();

        var stdout = ConsumerProgram.BuildAndRun(output, dir.Path, program.Replace(Folder, "\"" + export.Fp32Folder + "\"", StringComparison.Ordinal),
            "Microsoft.ML.LoRA.Onnx/Microsoft.ML.LoRA.Onnx.csproj", imports: false);

        stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[0].Trim().Should().Be(classifier.PredictLabel(Text));
    }
}
