using Microsoft.ML;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.LoRA.Cli.Running;

/// <summary>
/// Collects the LoRA trainer's messages (and any warning or error) from <c>mlContext.Log</c>, echoes them to stderr
/// and keeps them for the run folder's log.txt. ML.NET's own trace chatter is left out.
/// </summary>
internal sealed class RunLog : IDisposable
{
    readonly MLContext _ml;
    readonly TextWriter _echo;
    readonly List<string> _lines = new();

    public RunLog(MLContext ml, TextWriter echo)
    {
        _ml = ml;
        _echo = echo;
        _ml.Log += OnLog;
    }

    public IReadOnlyList<string> Lines { get { lock (_lines) return _lines.ToList(); } }

    /// <summary>Adds a line of our own (start, finish, where files went).</summary>
    public void Write(string message)
    {
        var line = $"{DateTime.Now:HH:mm:ss} {message}";
        lock (_lines) _lines.Add(line);
        _echo.WriteLine(message);
    }

    void OnLog(object? sender, LoggingEventArgs e)
    {
        bool ours = e.Source?.StartsWith("LoraTextClassifier", StringComparison.Ordinal) == true;
        if (!ours && e.Kind < ChannelMessageKind.Warning) return;
        if (ours && e.Kind == ChannelMessageKind.Trace) return;
        Write(e.RawMessage);
    }

    public void Dispose() => _ml.Log -= OnLog;
}
