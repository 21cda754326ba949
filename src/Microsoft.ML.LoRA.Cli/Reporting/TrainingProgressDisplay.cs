using Microsoft.ML.LoRA.Training;
using Spectre.Console;

namespace Microsoft.ML.LoRA.Cli.Reporting;

/// <summary>
/// Shows training progress fed through <see cref="IProgress{T}"/>: a live Spectre progress bar on an interactive
/// terminal, plain lines (at most one per interval of training time, plus each epoch's start and the last step) when
/// the output is redirected, as in CI logs. Dispose it when training ends.
/// </summary>
internal abstract class TrainingProgressDisplay : IProgress<TrainingProgress>, IDisposable
{
    /// <summary>How often plain mode prints a line, in training time, unless told otherwise.</summary>
    public static readonly TimeSpan DefaultPlainInterval = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A live display when <paramref name="console"/> is an interactive ANSI terminal; otherwise plain lines written to
    /// the console's writer every <paramref name="plainInterval"/> of training time (default 10 s).
    /// </summary>
    public static TrainingProgressDisplay Create(IAnsiConsole console, TimeSpan? plainInterval = null)
    {
        var capabilities = console.Profile.Capabilities;
        return capabilities.Interactive && capabilities.Ansi
            ? new LiveTrainingProgress(console)
            : new PlainTrainingProgress(console.Profile.Out.Writer, plainInterval ?? DefaultPlainInterval);
    }

    /// <inheritdoc />
    public abstract void Report(TrainingProgress value);

    /// <inheritdoc />
    public abstract void Dispose();
}
