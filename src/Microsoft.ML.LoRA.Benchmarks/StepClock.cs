using System.Diagnostics;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>
/// Times repeated steps three ways: total wall time (what the anchor reports, as samples/s), the fastest and the
/// median single step (robust when other processes share the cores), and this process's CPU time per step (what the
/// step costs in work, nearly independent of other load when idle threads sleep).
/// </summary>
public sealed class StepClock
{
    readonly List<double> _wallMs = new();
    double _cpuMs;

    /// <summary>Runs <paramref name="step"/> once and records it.</summary>
    public void Time(Action step)
    {
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        long t0 = Stopwatch.GetTimestamp();
        step();
        _wallMs.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        _cpuMs += (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds;
    }

    /// <summary>Each step's wall time in ms, in the order recorded.</summary>
    public IReadOnlyList<double> WallMs => _wallMs;
    /// <summary>Steps recorded.</summary>
    public int Count => _wallMs.Count;
    /// <summary>Total wall time in seconds.</summary>
    public double TotalSeconds => _wallMs.Sum() / 1000;
    /// <summary>Mean wall time of a step.</summary>
    public double MeanMs => _wallMs.Count == 0 ? double.NaN : _wallMs.Average();
    /// <summary>The fastest step.</summary>
    public double MinMs => _wallMs.Count == 0 ? double.NaN : _wallMs.Min();
    /// <summary>The median step.</summary>
    public double MedianMs => Median(_wallMs);
    /// <summary>CPU time (all threads of this process) per step.</summary>
    public double CpuMsPerStep => _wallMs.Count == 0 ? double.NaN : _cpuMs / _wallMs.Count;

    /// <summary>The median of <paramref name="xs"/> (NaN when empty).</summary>
    public static double Median(IReadOnlyCollection<double> xs)
    {
        if (xs.Count == 0) return double.NaN;
        var s = xs.OrderBy(x => x).ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }
}
