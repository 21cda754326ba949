namespace Microsoft.ML.LoRA.Cli.Infrastructure;

/// <summary>The options given do not make sense together; reported as a usage error (exit code 2).</summary>
internal sealed class CliUsageException : Exception
{
    public CliUsageException(string message) : base(message) { }
}
