namespace Microsoft.ML.LoRA.Cli.Infrastructure;

/// <summary>How a failure is reported: the exit code and the one-line reason printed on stderr.</summary>
internal sealed record CliError(int ExitCode, string Message);
