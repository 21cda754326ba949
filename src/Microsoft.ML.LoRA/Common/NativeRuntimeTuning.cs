using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Microsoft.ML.LoRA;

/// <summary>
/// Process-wide settings of the native runtime that libtorch runs on, applied on Linux when this assembly loads
/// (before libtorch does), because each was measured to speed CPU training or inference up here (docs/benchmarks.md):
/// <list type="bullet">
/// <item>OpenMP workers wait passively (<c>OMP_WAIT_POLICY=PASSIVE</c>) instead of spinning between parallel regions,
/// so they do not take the cores the working threads, .NET's own threads or other processes need.</item>
/// <item>glibc's allocator keeps freed blocks up to 32 MiB in its heap rather than returning each one to the kernel
/// (<c>mallopt</c>: mmap threshold 32 MiB, trim threshold 1 GiB, top pad 64 MiB). A training step frees and reallocates
/// the same activation buffers every step; without this each of them is mapped afresh and its pages faulted in
/// again, which cost about a quarter of a DistilBERT step. Resident memory stays near its peak instead of falling
/// between steps, as with PyTorch's caching allocators.</item>
/// <item>On x86-64 CPUs that are not Intel's, MKL picks its matrix-product kernels by instruction set, as on Intel's
/// (<see cref="MklCpuDispatch"/>; <c>MICROSOFT_ML_LORA_MKL_ANY_VENDOR=0</c> turns this one off).</item>
/// </list>
/// An <c>OMP_WAIT_POLICY</c> already in the environment wins; <c>MICROSOFT_ML_LORA_NATIVE_TUNING=0</c> turns all three off.
/// </summary>
public static class NativeRuntimeTuning
{
    /// <summary>The OpenMP wait policy in force for libtorch (from the environment, or PASSIVE when we set it), or null when untouched.</summary>
    public static string? OpenMpWaitPolicy { get; private set; }

    /// <summary>True when the allocator settings were applied.</summary>
    public static bool AllocatorTuned { get; private set; }

    /// <summary>True when MKL was told the CPU may run its Intel code paths (a non-Intel x86-64 CPU; see <see cref="MklCpuDispatch"/>).</summary>
    public static bool MklDispatchesByInstructionSet { get; private set; }

    /// <summary>Why <see cref="MklDispatchesByInstructionSet"/> is false ("" when it is true).</summary>
    public static string MklDispatchNote { get; private set; } = "not applied";

    const int M_TRIM_THRESHOLD = -1, M_TOP_PAD = -2, M_MMAP_THRESHOLD = -3;

#pragma warning disable CA2255 // a module initializer is the one place that runs before any type of ours can load libtorch
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Apply()
    {
        if (!OperatingSystem.IsLinux()) return;
        if (Environment.GetEnvironmentVariable("MICROSOFT_ML_LORA_NATIVE_TUNING") == "0") return;
        try
        {
            var existing = Environment.GetEnvironmentVariable("OMP_WAIT_POLICY");
            if (string.IsNullOrEmpty(existing))
            {
                // .NET's SetEnvironmentVariable does not reach the native environment on Unix; libgomp reads the native one.
                if (setenv("OMP_WAIT_POLICY", "PASSIVE", 0) == 0) Environment.SetEnvironmentVariable("OMP_WAIT_POLICY", "PASSIVE");
                existing = Environment.GetEnvironmentVariable("OMP_WAIT_POLICY");
            }
            OpenMpWaitPolicy = existing;
            AllocatorTuned = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1
                & mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1
                & mallopt(M_TOP_PAD, 64 << 20) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc (musl, for example): leave the runtime as it is.
        }
        try
        {
            MklDispatchesByInstructionSet = MklCpuDispatch.Apply(out var note);
            MklDispatchNote = note;
        }
        catch (Exception e)
        {
            // Only a speed-up: whatever the loader or the C library here does not offer, the assembly must still load.
            MklDispatchNote = e.GetBaseException().Message;
        }
    }

    [DllImport("libc", EntryPoint = "setenv")]
    static extern int setenv(string name, string value, int overwrite);

    [DllImport("libc", EntryPoint = "mallopt")]
    static extern int mallopt(int param, int value);
}
