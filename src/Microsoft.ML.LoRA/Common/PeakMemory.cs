namespace Microsoft.ML.LoRA;

/// <summary>Resident memory of this process as Linux reports it in <c>/proc/self/status</c>.</summary>
public static class PeakMemory
{
    /// <summary>Peak resident set size (VmHWM) in MiB, or 0 where /proc is not available.</summary>
    public static double PeakRssMiB() => ReadKiB("VmHWM:") / 1024.0;

    /// <summary>Current resident set size (VmRSS) in MiB, or 0 where /proc is not available.</summary>
    public static double CurrentRssMiB() => ReadKiB("VmRSS:") / 1024.0;

    static long ReadKiB(string field)
    {
        const string status = "/proc/self/status";
        if (!File.Exists(status)) return 0;
        foreach (var line in File.ReadLines(status))
        {
            if (!line.StartsWith(field, StringComparison.Ordinal)) continue;
            var parts = line[field.Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return long.TryParse(parts[0], out var kib) ? kib : 0;
        }
        return 0;
    }
}
