using System.Diagnostics;
using System.Text.RegularExpressions;
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
        var text = File.ReadAllText(Path.Combine(SharedData.RepoRoot, "docs", "deployment.md"));
        int at = text.IndexOf(section, StringComparison.Ordinal);
        at.Should().BeGreaterThan(-1);
        var program = Regex.Match(text[at..], "```csharp\n(.*?)```", RegexOptions.Singleline).Groups[1].Value;
        program.Should().Contain(Folder, "the test points the documented folder at a real export").And.Contain(Text);
        using var classifier = Microsoft.ML.LoRA.Onnx.OnnxTextClassifier.Load(export.Fp32Folder);

        var stdout = BuildAndRun(program.Replace(Folder, "\"" + export.Fp32Folder + "\"", StringComparison.Ordinal));

        stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[0].Trim().Should().Be(classifier.PredictLabel(Text));
    }

    string BuildAndRun(string program)
    {
        using var dir = new TempDir();
        var repo = SharedData.RepoRoot;
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
        File.WriteAllText(dir.File("Program.cs"), program);
        File.WriteAllText(dir.File("Consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                <NoWarn>NU1603</NoWarn>
              </PropertyGroup>
              <ItemGroup>
                <ProjectReference Include="{repo}/src/Microsoft.ML.LoRA.Onnx/Microsoft.ML.LoRA.Onnx.csproj" />
              </ItemGroup>
            </Project>
            """);
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
