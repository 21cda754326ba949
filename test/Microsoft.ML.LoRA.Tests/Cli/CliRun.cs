using Microsoft.ML.LoRA.Cli;

namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary>What one in-process run of <c>lora</c> returned and printed.</summary>
public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>The non-empty lines written to stderr.</summary>
    public string[] StderrLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}

/// <summary>Runs the CLI in-process through <see cref="Program.Run"/>, capturing stdout and stderr.</summary>
public static class CliRun
{
    public static CliResult Lora(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Program.Run(args, stdout, stderr);
        return new CliResult(code, stdout.ToString(), stderr.ToString());
    }
}
