using System.Globalization;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>The machine's load average, recorded with each result: figures taken while other work runs are noisier.</summary>
public static class LoadAverage
{
    /// <summary>The one-minute load average from /proc/loadavg, or NaN where it is not available.</summary>
    public static double OneMinute()
    {
        try
        {
            var first = File.ReadAllText("/proc/loadavg").Split(' ')[0];
            return double.Parse(first, CultureInfo.InvariantCulture);
        }
        catch (IOException) { return double.NaN; }
        catch (UnauthorizedAccessException) { return double.NaN; }
    }
}
