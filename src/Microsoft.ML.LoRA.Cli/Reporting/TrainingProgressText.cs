using System.Globalization;
using Microsoft.ML.LoRA.Training;

namespace Microsoft.ML.LoRA.Cli.Reporting;

/// <summary>Text describing a training step: epoch, step, loss, learning rate, throughput and time left.</summary>
internal static class TrainingProgressText
{
    static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>"epoch 1/3  step 120/900 (13.3%)  loss 0.4123  lr 2.00e-05  312.4 samples/s  ETA 0:04:10".</summary>
    public static string Describe(TrainingProgress p)
    {
        double percent = p.TotalSteps > 0 ? 100.0 * p.Step / p.TotalSteps : 0;
        return string.Create(Invariant,
            $"epoch {p.Epoch}/{p.Epochs}  step {p.Step}/{p.TotalSteps} ({percent:0.0}%)  loss {p.Loss:0.0000}  " +
            $"lr {p.LearningRate:0.00e+00}  {p.SamplesPerSecond:0.0} samples/s  ETA {Duration(p.Remaining)}");
    }

    /// <summary>"epoch 1/3  loss 0.4123  312.4 samples/s  ETA 0:04:10": the live display's label (its bar shows the step).</summary>
    public static string Summary(TrainingProgress p) => string.Create(Invariant,
        $"epoch {p.Epoch}/{p.Epochs}  loss {p.Loss:0.0000}  {p.SamplesPerSecond:0.0} samples/s  ETA {Duration(p.Remaining)}");

    /// <summary>h:mm:ss, or "--" when unknown.</summary>
    public static string Duration(TimeSpan? span) => span is { } t && t >= TimeSpan.Zero
        ? string.Create(Invariant, $"{(int)t.TotalHours}:{t.Minutes:00}:{t.Seconds:00}")
        : "--";
}
