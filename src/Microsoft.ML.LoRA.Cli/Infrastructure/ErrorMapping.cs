using System.Reflection;
using System.Text.Json;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Inference;
using Microsoft.ML.LoRA.MLNet;
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
            CheckpointFormatException or ModelFileException or InvalidDataException or NonFiniteScoreException or JsonException or FormatException
                or NotSupportedException or EndOfStreamException => new(ExitCodes.InvalidInput, OneLine(e.Message)),
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

    /// <summary>
    /// The exception that says what went wrong: without .NET's wrappers (a single-exception AggregateException,
    /// TargetInvocationException, TypeInitializationException) and without ML.NET's, which re-throw what a cursor's
    /// worker thread hit inside an exception of their own (<see cref="IsMlNetWrapper"/>).
    /// </summary>
    static Exception Unwrap(Exception e)
    {
        while (true)
        {
            switch (e)
            {
                case AggregateException { InnerExceptions.Count: 1 } a: e = a.InnerExceptions[0]; continue;
                case TargetInvocationException { InnerException: { } inner }: e = inner; continue;
                case TypeInitializationException { InnerException: { } inner }: e = inner; continue;
                case { InnerException: { } inner } when IsMlNetWrapper(e): e = inner; continue;
                default: return e;
            }
        }
    }

    /// <summary>
    /// One of ML.NET's wrappers (<see cref="PipelineExceptions.IsWrapper"/>), or an exception of a wrapper's type whose
    /// inner exception this class reports as bad input, an I/O error or a cancellation rather than an internal error.
    /// </summary>
    static bool IsMlNetWrapper(Exception e) =>
        PipelineExceptions.IsWrapper(e)
        || (e.InnerException is not null && (e.GetType() == typeof(InvalidOperationException) || e.GetType() == typeof(FormatException))
            && Classify(e.InnerException).ExitCode != ExitCodes.Failure);

    /// <summary>
    /// When <paramref name="exception"/> is ML.NET's TextLoader failing to read a delimited file (an unclosed quote,
    /// reported with its line but not the file), an <see cref="InvalidDataException"/> whose message puts
    /// <paramref name="path"/> in front of the cause; otherwise null.
    /// </summary>
    public static InvalidDataException? NameTextLoaderFailure(Exception exception, string path)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is not FormatException { InnerException: { } } || !TextLoaderMessages.Any(m => e.Message.StartsWith(m, StringComparison.Ordinal)))
                continue;
            var cause = Unwrap(e);
            return cause.Message.Contains(path, StringComparison.Ordinal) ? null : new InvalidDataException($"{path}: {cause.Message}", exception);
        }
        return null;
    }

    /// <summary>
    /// When <paramref name="exception"/> is (or wraps) the model's <see cref="NonFiniteScoreException"/> raised while the
    /// rows of <paramref name="data"/> were scored, an <see cref="InvalidDataException"/> (exit 4) whose message names
    /// <paramref name="model"/>, the first such row and <paramref name="outcome"/> (what was not done); otherwise null.
    /// </summary>
    public static InvalidDataException? NameNonFiniteScore(Exception exception, string model, string data, string outcome)
    {
        for (var e = exception; e is not null; e = e.InnerException)
            if (e is NonFiniteScoreException score)
                return new InvalidDataException(
                    $"{model}: the model produced a non-finite score ({score.Value}) for data row {score.Example + 1} of {data} " +
                    $"(counting from 1), the first such row; {NonFiniteScoreException.Causes}. {outcome}", exception);
        return null;
    }

    static readonly string[] TextLoaderMessages = { "Stream reading encountered exception", "Parsing failed with an exception" };

    /// <summary>The message without .NET's " (Parameter 'name')", which names a C# parameter, not an option.</summary>
    static string WithoutParameterName(ArgumentException e) =>
        e.ParamName is null ? e.Message : e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal);

    static string OneLine(string message) =>
        string.Join(' ', message.Split(new[] { '\r', '\n' }, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
