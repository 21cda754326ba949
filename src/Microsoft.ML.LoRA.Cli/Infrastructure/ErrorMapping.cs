using System.Reflection;
using System.Text.Json;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Persistence;

namespace Microsoft.ML.LoRA.Cli.Infrastructure;

/// <summary>
/// The one place that turns an exception into an exit code and a one-line message. Bad input (missing files,
/// malformed or damaged files, bad option values) gets its own code and the exception's message; anything else is
/// reported as an internal error. Stack traces are printed only when the environment variable <c>LORA_DEBUG</c> is set.
/// </summary>
internal static class ErrorMapping
{
    /// <summary>The environment variable that adds the full exception to the report.</summary>
    public const string DebugVariable = "LORA_DEBUG";

    /// <summary>The exit code and message for <paramref name="exception"/>.</summary>
    public static CliError Classify(Exception exception)
    {
        var e = Unwrap(exception);
        return e switch
        {
            OperationCanceledException => new(ExitCodes.Cancelled, "Cancelled."),
            CliUsageException => new(ExitCodes.Usage, OneLine(e.Message)),
            FileNotFoundException or DirectoryNotFoundException => new(ExitCodes.NotFound, OneLine(e.Message)),
            CheckpointFormatException or ModelFileException or InvalidDataException or JsonException or FormatException or NotSupportedException
                => new(ExitCodes.InvalidInput, OneLine(e.Message)),
            ArgumentException a => new(ExitCodes.Usage, OneLine(WithoutParameterName(a))),
            UnauthorizedAccessException or IOException => new(ExitCodes.IoError, OneLine(e.Message)),
            _ => new(ExitCodes.Failure, OneLine($"internal error ({e.GetType().Name}): {e.Message}")),
        };
    }

    /// <summary>Writes the report for <paramref name="exception"/> to <paramref name="stderr"/> and returns the exit code.</summary>
    public static int Report(Exception exception, TextWriter stderr)
    {
        var error = Classify(exception);
        stderr.WriteLine($"lora: error: {error.Message}");
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable(DebugVariable))) stderr.WriteLine(exception);
        return error.ExitCode;
    }

    static Exception Unwrap(Exception e)
    {
        while (true)
        {
            switch (e)
            {
                case AggregateException { InnerExceptions.Count: 1 } a: e = a.InnerExceptions[0]; continue;
                case TargetInvocationException { InnerException: { } inner }: e = inner; continue;
                case TypeInitializationException { InnerException: { } inner }: e = inner; continue;
                default: return e;
            }
        }
    }

    /// <summary>The message without .NET's " (Parameter 'name')", which names a C# parameter, not an option.</summary>
    static string WithoutParameterName(ArgumentException e) =>
        e.ParamName is null ? e.Message : e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal);

    static string OneLine(string message) =>
        string.Join(' ', message.Split(new[] { '\r', '\n' }, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
