using System.Runtime.InteropServices;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>
/// Chooses how libtorch's OpenMP worker threads wait between parallel regions (OMP_WAIT_POLICY), before libtorch
/// loads. The default lets idle workers spin; on a machine whose cores are shared with other work, spinning workers
/// take the cores the working threads need, and a step can take several times longer. PASSIVE makes them sleep.
/// </summary>
/// <remarks>
/// libgomp reads its environment once, when it is loaded (TorchSharp loads libtorch on first use), and .NET's
/// Environment.SetEnvironmentVariable does not change the native environment on Unix, so this calls libc's setenv
/// and must run before the first torch call. An OMP_WAIT_POLICY already in the environment wins.
/// </remarks>
public static class OpenMpWaitPolicy
{
    /// <summary>Sets OMP_WAIT_POLICY to <paramref name="policy"/> (ACTIVE or PASSIVE) unless the environment already has one.</summary>
    /// <returns>The policy in force ("default" when none is set).</returns>
    public static string Apply(string? policy)
    {
        var existing = Environment.GetEnvironmentVariable("OMP_WAIT_POLICY");
        if (!string.IsNullOrEmpty(existing)) return existing;
        if (string.IsNullOrEmpty(policy) || policy.Equals("default", StringComparison.OrdinalIgnoreCase)) return "default";
        var value = policy.ToUpperInvariant();
        if (value is not ("ACTIVE" or "PASSIVE")) throw new ArgumentException($"OpenMP wait policy must be active, passive or default (got '{policy}')");
        Environment.SetEnvironmentVariable("OMP_WAIT_POLICY", value);
        if (!OperatingSystem.IsWindows()) _ = setenv("OMP_WAIT_POLICY", value, 1);
        return value;
    }

    [DllImport("libc", SetLastError = true)]
    static extern int setenv(string name, string value, int overwrite);
}
