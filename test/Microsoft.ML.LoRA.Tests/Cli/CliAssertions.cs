namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary>The shape every failed run must have: a non-zero code, one line on stderr, no stack trace, nothing on stdout.</summary>
public static class CliAssertions
{
    public static void ShouldFailCleanly(this CliResult result, int exitCode, params string[] messageParts)
    {
        result.ExitCode.Should().Be(exitCode, "stderr was: {0}", result.Stderr);
        result.StderrLines.Should().ContainSingle("the reason is one line");
        var line = result.StderrLines[0];
        line.Should().StartWith("lora: error: ");
        line.Should().NotContain("   at ", "no stack trace is printed");
        foreach (var part in messageParts) line.Should().Contain(part);
        result.Stdout.Should().BeEmpty();
    }
}
