using System.Diagnostics;
using Microsoft.ML.LoRA.Training;

namespace Microsoft.ML.LoRA.Cli.Running;

/// <summary>
/// A test hook: when the environment variable <c>LORA_TEST_KILL_AT</c> names a point a train run reaches ("start",
/// "step:K", "saved", "staged", "marked", "moving", "moved", "committed"), the process kills itself there (SIGKILL, as
/// <c>kill -9</c>), so tests can stop a run at exact points of training and of the run folder's commit. When
/// <c>LORA_TEST_HOLD_AT</c> names a point, the process waits there until it is killed, so a test that kills it after a
/// random delay is sure to kill it before it ends.
/// </summary>
internal static class CrashPoint
{
    public const string Variable = "LORA_TEST_KILL_AT";
    public const string HoldVariable = "LORA_TEST_HOLD_AT";

    static readonly string? Target = Environment.GetEnvironmentVariable(Variable);
    static readonly string? Hold = Environment.GetEnvironmentVariable(HoldVariable);

    public static void Hit(string point)
    {
        if (Target is not null && string.Equals(Target, point, StringComparison.Ordinal))
            Process.GetCurrentProcess().Kill();
        if (Hold is not null && string.Equals(Hold, point, StringComparison.Ordinal))
            Thread.Sleep(Timeout.Infinite);
    }

    /// <summary>Forwards progress reports and hits "step:K" after optimizer step K (after its checkpoint, if it had one, is written).</summary>
    public static IProgress<TrainingProgress> AtSteps(IProgress<TrainingProgress> inner) =>
        Target is null ? inner : new Reporter(inner);

    sealed class Reporter(IProgress<TrainingProgress> inner) : IProgress<TrainingProgress>
    {
        long _pending = -1;

        public void Report(TrainingProgress value)
        {
            // The report of step K comes before step K's checkpoint is written, so step K's point is hit at the next report.
            if (_pending >= 0) Hit($"step:{_pending}");
            _pending = value.Step;
            inner.Report(value);
        }
    }
}
