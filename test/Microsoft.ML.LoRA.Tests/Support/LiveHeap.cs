using System.Runtime.InteropServices;

namespace Microsoft.ML.LoRA.Tests.Support;

/// <summary>
/// Bytes the process's C heap (glibc malloc, where libtorch's CPU tensors live) has handed out and not had back:
/// in-use arena bytes plus mmapped blocks, over every arena. Linux with glibc only.
/// </summary>
internal static class LiveHeap
{
    [StructLayout(LayoutKind.Sequential)]
    struct MallInfo2
    {
        public nuint Arena, OrdBlks, SmBlks, HBlks, HBlkHd, UsmBlks, FsmBlks, UordBlks, FordBlks, KeepCost;
    }

    [DllImport("libc", EntryPoint = "mallinfo2")]
    static extern MallInfo2 Read();

    public static long Bytes()
    {
        var info = Read();
        return (long)info.UordBlks + (long)info.HBlkHd;
    }

    /// <summary>
    /// <see cref="Bytes"/> once unreachable tensors are freed: two collections, since a finalizer can release objects
    /// whose own finalizers then run in the next one.
    /// </summary>
    public static long Settled()
    {
        for (int i = 0; i < 2; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        return Bytes();
    }
}

/// <summary>Tests that measure <see cref="LiveHeap"/>: they run alone, so no other test's tensors come and go meanwhile.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class LiveHeapCollection
{
    public const string Name = "Live C heap measurements";
}
