using System.ComponentModel;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;

namespace Microsoft.ML.LoRA;

/// <summary>
/// Names of temporary files and folders that say which process owns them: <c>{pid}-{host}</c>, the process id and
/// the first 8 hex digits of the SHA-256 of the machine name. A later process deletes such litter only when it was
/// made on the same machine by a process that is no longer running, so a live process's files (on this machine or,
/// through a shared folder, on another) are never touched.
/// </summary>
internal static class ProcessOwnedNames
{
    /// <summary>This machine's tag.</summary>
    public static string HostTag { get; } =
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Environment.MachineName)))[..8];

    /// <summary>The owner part of this process's temporary names: <c>{pid}-{host}</c>.</summary>
    public static string Owner { get; } = $"{Environment.ProcessId}-{HostTag}";

    /// <summary>Whether a name's owner (<paramref name="pid"/>, <paramref name="host"/>) is a process of this machine that has ended.</summary>
    public static bool IsStale(string pid, string host)
    {
        if (!string.Equals(host, HostTag, StringComparison.Ordinal)) return false;
        if (!int.TryParse(pid, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int id)) return false;
        return id != Environment.ProcessId && !IsRunning(id);
    }

    /// <summary>Deletes, without failing, what <paramref name="delete"/> is given for each stale path; returns how many went.</summary>
    public static int DeleteStale(IEnumerable<string> candidates, Func<string, (string Pid, string Host)?> owner, Action<string> delete)
    {
        int deleted = 0;
        IEnumerable<string> list;
        try { list = candidates.ToList(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return 0; }
        foreach (var path in list)
        {
            if (owner(path) is not { } o || !IsStale(o.Pid, o.Host)) continue;
            try { delete(path); deleted++; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return deleted;
    }

    static bool IsRunning(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return true;
        }
        catch (ArgumentException) { return false; }
        catch (Exception e) when (e is InvalidOperationException or Win32Exception or NotSupportedException or UnauthorizedAccessException) { return true; }
    }
}
