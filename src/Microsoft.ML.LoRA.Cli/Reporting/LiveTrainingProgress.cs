using Microsoft.ML.LoRA.Training;
using Spectre.Console;

namespace Microsoft.ML.LoRA.Cli.Reporting;

/// <summary>
/// A live Spectre progress bar (description: epoch, loss, samples/s, ETA) that runs on its own task while training
/// reports to it; disposing it draws the final state and stops the display.
/// </summary>
internal sealed class LiveTrainingProgress : TrainingProgressDisplay
{
    readonly TaskCompletionSource<ProgressTask> _task = new(TaskCreationOptions.RunContinuationsAsynchronously);
    readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    readonly Task _display;
    bool _disposed;

    public LiveTrainingProgress(IAnsiConsole console)
    {
        var progress = console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new SpinnerColumn());
        _display = progress.StartAsync(async context =>
        {
            _task.SetResult(context.AddTask("starting", autoStart: true, maxValue: 1));
            await _finished.Task.ConfigureAwait(false);
            context.Refresh();
        });
        // If the display fails before it has a task, reports must fail rather than wait forever.
        _display.ContinueWith(t => _task.TrySetException(t.Exception?.InnerExceptions ?? (IEnumerable<Exception>)new[] { new InvalidOperationException("the progress display stopped") }),
            CancellationToken.None, TaskContinuationOptions.NotOnRanToCompletion, TaskScheduler.Default);
    }

    public override void Report(TrainingProgress value)
    {
        var task = _task.Task.GetAwaiter().GetResult();
        task.MaxValue = Math.Max(1, value.TotalSteps);
        task.Value = Math.Min(value.Step, task.MaxValue);
        task.Description = Markup.Escape(TrainingProgressText.Summary(value));
    }

    public override void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _finished.TrySetResult();
        _display.GetAwaiter().GetResult();
    }
}
