using Microsoft.ML.LoRA.Training;

namespace Microsoft.ML.LoRA.Cli.Reporting;

/// <summary>
/// Progress as plain text lines, for redirected output: a line for the first report of each epoch, the last step,
/// and otherwise at most one per <c>interval</c> of the trainer's elapsed time (so the output is the same however
/// fast the machine is).
/// </summary>
internal sealed class PlainTrainingProgress : TrainingProgressDisplay
{
    readonly TextWriter _writer;
    readonly TimeSpan _interval;
    readonly object _gate = new();
    int _epoch = -1;
    TimeSpan _lastPrinted;

    public PlainTrainingProgress(TextWriter writer, TimeSpan interval)
    {
        _writer = writer;
        _interval = interval;
    }

    public override void Report(TrainingProgress value)
    {
        lock (_gate)
        {
            bool newEpoch = value.Epoch != _epoch;
            bool last = value.TotalSteps > 0 && value.Step >= value.TotalSteps;
            if (!newEpoch && !last && value.Elapsed - _lastPrinted < _interval) return;
            _epoch = value.Epoch;
            _lastPrinted = value.Elapsed;
            _writer.WriteLine(TrainingProgressText.Describe(value));
            _writer.Flush();
        }
    }

    public override void Dispose() => _writer.Flush();
}
