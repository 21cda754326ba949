using System.Diagnostics;
using System.Text.RegularExpressions;
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

    /// <summary>The first csharp block after <paramref name="marker"/> in a documentation file.</summary>
    static string Program(string file, string marker)
    {
        var text = File.ReadAllText(Path.Combine(SharedData.RepoRoot, file));
        int at = text.IndexOf(marker, StringComparison.Ordinal);
        at.Should().BeGreaterThan(-1, $"{file} has '{marker}'");
        var block = Regex.Match(text[at..], "```csharp\n(.*?)```", RegexOptions.Singleline);
        block.Success.Should().BeTrue($"a csharp block follows '{marker}' in {file}");
        block.Groups[1].Value.Should().Contain(HubModel, "the program names the default Hub model, which the test points at a local copy");
        return block.Groups[1].Value;
    }

    string BuildAndRun(string program)
    {
        using var dir = new TempDir();
        var repo = SharedData.RepoRoot;
        var testOutput = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var configuration = testOutput.Parent!.Name;
        File.WriteAllText(dir.File("Program.cs"), program.Replace(HubModel, "\"" + SharedData.PretrainedBert + "\"", StringComparison.Ordinal));
        File.WriteAllText(dir.File("Consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <Import Project="{repo}/build/Microsoft.ML.LoRA.props" />
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                <NoWarn>NU1603</NoWarn>
              </PropertyGroup>
              <ItemGroup>
                <ProjectReference Include="{repo}/src/Microsoft.ML.LoRA/Microsoft.ML.LoRA.csproj" />
              </ItemGroup>
              <Import Project="{repo}/build/Microsoft.ML.LoRA.targets" />
            </Project>
            """);
        // A few hundred SST-2 rows in the layout the program reads: header, label, text.
        TextData.WriteTsv(dir.File("train.tsv"), TextData.Sst2("train.tsv", 0, 400));
        TextData.WriteTsv(dir.File("test.tsv"), TextData.Sst2("dev.tsv", 0, 100));

        // The library is already built with the tests; the consumer links against that build instead of rebuilding it.
        Run(dir.Path, "build", "-c", configuration, "-p:BuildProjectReferences=false", "--nologo", "-v", "q");
        return Run(dir.Path, "run", "-c", configuration, "--no-build");
    }

    string Run(string folder, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit((int)TimeSpan.FromMinutes(5).TotalMilliseconds).Should().BeTrue($"dotnet {args[0]} finishes");
        output.WriteLine($"dotnet {string.Join(' ', args)} -> {process.ExitCode}\n{stdout.Result}\n{stderr.Result}");
        process.ExitCode.Should().Be(0, $"dotnet {string.Join(' ', args)} succeeds:\n{stdout.Result}\n{stderr.Result}");
        return stdout.Result;
    }
}
