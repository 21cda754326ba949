namespace Microsoft.ML.LoRA.Training;

/// <summary>Linear warm-up from 0 to the peak rate, then linear decay to 0 at the last step (Hugging Face's default).</summary>
public sealed class LearningRateSchedule
{
    readonly double _peak;
    readonly long _warmup, _total;

    public LearningRateSchedule(double peak, long totalSteps, long warmupSteps)
    {
        if (totalSteps < 1) throw new ArgumentOutOfRangeException(nameof(totalSteps));
        _peak = peak;
        _total = totalSteps;
        _warmup = Math.Clamp(warmupSteps, 0, totalSteps);
    }

    /// <summary>The rate for optimizer step <paramref name="step"/> (0-based).</summary>
    public double At(long step)
    {
        if (step < _warmup) return _peak * (step + 1) / (_warmup + 1);
        long decaySteps = Math.Max(1, _total - _warmup);
        return _peak * Math.Max(0.0, (double)(_total - step) / decaySteps);
    }
}
