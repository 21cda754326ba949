using System.Diagnostics;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Microsoft.ML.LoRA.Tests.Support;

/// <summary>
/// A documented C# program built as a package consumer builds it (a project of its own that references one of ours,
/// linked against the build the tests run with instead of rebuilding it) and run; its standard output comes back.
/// </summary>
public static class ConsumerProgram
{
    /// <summary>The first csharp block after <paramref name="marker"/> in a file of the repository.</summary>
    public static string FromDocs(string file, string marker)
    {
        var text = File.ReadAllText(Path.Combine(SharedData.RepoRoot, file));
        int at = text.IndexOf(marker, StringComparison.Ordinal);
        at.Should().BeGreaterThan(-1, $"{file} has '{marker}'");
        var block = Regex.Match(text[at..], "```csharp\n(.*?)```", RegexOptions.Singleline);
        block.Success.Should().BeTrue($"a csharp block follows '{marker}' in {file}");
        return block.Groups[1].Value;
    }

    /// <summary>
    /// Builds <paramref name="program"/> in <paramref name="folder"/> against <paramref name="project"/> (a path under
    /// src/), with <paramref name="imports"/> as the package's build props/targets, and runs it there.
    /// </summary>
    public static string BuildAndRun(ITestOutputHelper output, string folder, string program, string project, bool imports)
    {
        var repo = SharedData.RepoRoot;
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
        File.WriteAllText(Path.Combine(folder, "Program.cs"), program);
        File.WriteAllText(Path.Combine(folder, "Consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              {(imports ? $"<Import Project=\"{repo}/build/Microsoft.ML.LoRA.props\" />" : "")}
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                <NoWarn>NU1603</NoWarn>
              </PropertyGroup>
              <ItemGroup>
                <ProjectReference Include="{repo}/src/{project}" />
              </ItemGroup>
              {(imports ? $"<Import Project=\"{repo}/build/Microsoft.ML.LoRA.targets\" />" : "")}
            </Project>
            """);
        Run(output, folder, "build", "-c", configuration, "-p:BuildProjectReferences=false", "--nologo", "-v", "q");
        return Run(output, folder, "run", "-c", configuration, "--no-build");
    }

    static string Run(ITestOutputHelper output, string folder, params string[] args)
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
