using System.Reflection;
using System.Runtime.ExceptionServices;

namespace Microsoft.ML.LoRA.MLNet;

/// <summary>
/// ML.NET's data pipeline re-throws an exception raised while reading rows inside its own
/// <see cref="InvalidOperationException"/> ("Splitter/consolidator worker encountered exception while consuming source
/// data", and the like), which hides the message that says what is wrong with the data or the model. The LoRA stage
/// takes the original back out of what it reads; ML.NET stages after it (MapKeyToValue, evaluators) wrap again what
/// they read from it on worker threads, so catch handlers around a whole pipeline call <see cref="Unwrap"/>:
/// <code>catch (Exception e) { var cause = PipelineExceptions.Unwrap(e); ... }</code>
/// </summary>
public static class PipelineExceptions
{
    static readonly Assembly Ours = typeof(PipelineExceptions).Assembly;

    /// <summary>The exception ML.NET wrapped, or <paramref name="exception"/> itself when it is not such a wrapper.</summary>
    public static Exception Unwrap(Exception exception)
    {
        var e = exception;
        while (true)
        {
            switch (e)
            {
                case AggregateException { InnerExceptions.Count: 1 } a: e = a.InnerExceptions[0]; continue;
                case TargetInvocationException { InnerException: { } inner }: e = inner; continue;
                case { InnerException: { } inner } when IsWrapper(e): e = inner; continue;
                default: return e;
            }
        }
    }

    /// <summary>Runs <paramref name="read"/>, re-throwing what ML.NET wrapped as the original exception (stack kept).</summary>
    internal static T Unwrapping<T>(Func<T> read)
    {
        try { return read(); }
        catch (Exception e) when (!ReferenceEquals(Unwrap(e), e))
        {
            ExceptionDispatchInfo.Throw(Unwrap(e));
            throw;   // not reached
        }
    }

    /// <summary>
    /// The messages of the exceptions ML.NET wraps another in when a data view's reader or worker thread fails
    /// (Contracts.Except in DataViewUtils' splitter, TextLoader's reader and parser, the shuffle view). They say nothing
    /// of the cause, which is the inner exception.
    /// </summary>
    static readonly string[] WrapperMessages =
    {
        "Splitter/consolidator worker encountered exception",
        "Stream reading encountered exception",
        "Parsing failed with an exception",
        "Shuffle input cursor reader failed with an exception",
    };

    /// <summary>
    /// Whether <paramref name="e"/> is such a wrapper: exactly an InvalidOperationException or FormatException (the types
    /// ML.NET's wrappers have) with an inner exception, carrying one of ML.NET's wrapper messages or thrown by one of
    /// ML.NET's assemblies.
    /// </summary>
    public static bool IsWrapper(Exception e) =>
        e.InnerException is not null
        && (e.GetType() == typeof(InvalidOperationException) || e.GetType() == typeof(FormatException))
        && (WrapperMessages.Any(m => e.Message.StartsWith(m, StringComparison.Ordinal)) || ThrownByMLNet(e));

    static bool ThrownByMLNet(Exception e) =>
        e.TargetSite?.Module.Assembly is { } assembly && assembly != Ours
        && assembly.GetName().Name?.StartsWith("Microsoft.ML", StringComparison.Ordinal) == true;
}
