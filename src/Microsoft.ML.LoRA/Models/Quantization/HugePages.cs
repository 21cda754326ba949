using System.Runtime.InteropServices;

namespace Microsoft.ML.LoRA.Models.Quantization;

/// <summary>
/// Asks Linux to back a large, freshly allocated and not yet touched buffer with 2 MiB pages
/// (madvise(MADV_HUGEPAGE), what libtorch does itself when THP_MEM_ALLOC_ENABLE=1). A dequantized weight of tens of
/// megabytes is mapped afresh for every product, and faulting it in 4 KiB at a time costs more than filling it
/// (measured: docs/benchmarks.md, "Why the kernels are built as they are"). Only advice: where the kernel does not
/// use such pages (transparent huge pages set to never), or on other systems, nothing changes.
/// </summary>
internal static class HugePages
{
    /// <summary>
    /// The smallest buffer advised: glibc maps allocations from 32 MiB up afresh (the threshold
    /// <see cref="NativeRuntimeTuning"/> sets) and unmaps them when freed, so only those fault in anew each time;
    /// smaller ones come from the heap, whose pages stay mapped.
    /// </summary>
    public const long MinimumBytes = 32L << 20;

    const long PageBytes = 2 << 20;
    const int MadviseHugePage = 14;

    static bool _unavailable;

    /// <summary>
    /// Advises the 2 MiB-aligned pages that lie wholly inside [<paramref name="address"/>, + <paramref name="bytes"/>),
    /// for a buffer of at least <see cref="MinimumBytes"/>.
    /// </summary>
    public static unsafe void Advise(byte* address, long bytes)
    {
        if (_unavailable || bytes < MinimumBytes || !OperatingSystem.IsLinux()) return;
        long start = ((long)address + PageBytes - 1) / PageBytes * PageBytes;
        long end = ((long)address + bytes) / PageBytes * PageBytes;
        if (end <= start) return;
        try
        {
            madvise((nint)start, (nuint)(end - start), MadviseHugePage);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            _unavailable = true;
        }
    }

    [DllImport("libc", EntryPoint = "madvise")]
    static extern int madvise(nint address, nuint length, int advice);
}
