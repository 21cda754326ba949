using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using System.Text;

namespace Microsoft.ML.LoRA;

/// <summary>
/// Lets the MKL inside libtorch pick its matrix-product kernels by the CPU's instruction set on x86-64 CPUs that are
/// not Intel's (AMD's EPYC and Ryzen, for example), as it does on Intel's.
/// </summary>
/// <remarks>
/// MKL asks its own <c>mkl_serv_intel_cpu_true()</c> whether the CPUID vendor string is "GenuineIntel" and, when it
/// is not, runs slower generic code for some matrix shapes: on a Zen 3 (AVX2) a [1024 x 768] · [768 x 3072] product
/// ran at 90-106 GFLOP/s, against 128-139 once MKL took its AVX2 path, and a DistilBERT-base forward pass over 32 x 128
/// tokens took 2.9-3.4 s against 2.5-2.6 s (docs/benchmarks.md). libtorch exports that function and calls it through
/// its procedure linkage table, so the dynamic linker binds the call to the first definition in the process's global
/// scope. Before libtorch loads, this class loads (RTLD_GLOBAL) a shared object of a few hundred bytes, built by
/// <see cref="ConstantFunctionObject"/>, whose <c>mkl_serv_intel_cpu_true</c> returns 1. MKL then chooses among its
/// kernels by the CPUID feature bits alone, so it never runs an instruction the CPU lacks. The object is written to an
/// anonymous memory file (memfd), or to a temporary file removed once loaded where memfd is unavailable.
/// Only on Linux x86-64 with glibc, only when the CPU is not Intel's, and not when
/// <c>MICROSOFT_ML_LORA_MKL_ANY_VENDOR=0</c> (or <c>MICROSOFT_ML_LORA_NATIVE_TUNING=0</c>) is set.
/// </remarks>
internal static class MklCpuDispatch
{
    /// <summary>The MKL function that answers "is this an Intel CPU?".</summary>
    public const string VendorCheck = "mkl_serv_intel_cpu_true";

    const int RTLD_NOW = 2, RTLD_GLOBAL = 0x100;
    const uint MFD_CLOEXEC = 1;

    /// <summary>True when the CPU reports a vendor other than Intel (x86-64 only; false elsewhere).</summary>
    public static bool IsNonIntelX86 => X86Base.IsSupported && VendorString() != "GenuineIntel";

    /// <summary>The CPUID vendor string ("GenuineIntel", "AuthenticAMD", ...), or null off x86.</summary>
    public static string? VendorString()
    {
        if (!X86Base.IsSupported) return null;
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        var bytes = new byte[12];
        BitConverter.TryWriteBytes(bytes.AsSpan(0), ebx);
        BitConverter.TryWriteBytes(bytes.AsSpan(4), edx);
        BitConverter.TryWriteBytes(bytes.AsSpan(8), ecx);
        return Encoding.ASCII.GetString(bytes);
    }

    /// <summary>
    /// Loads the answering object into the global scope when this is a non-Intel x86-64 Linux CPU. Returns true when it
    /// is loaded; false (and why, in <paramref name="reason"/>) when not needed, turned off or not possible here.
    /// </summary>
    public static bool Apply(out string reason)
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            reason = "not Linux x86-64";
            return false;
        }
        if (Environment.GetEnvironmentVariable("MICROSOFT_ML_LORA_MKL_ANY_VENDOR") == "0")
        {
            reason = "turned off by MICROSOFT_ML_LORA_MKL_ANY_VENDOR=0";
            return false;
        }
        if (!IsNonIntelX86)
        {
            reason = "an Intel CPU: MKL already dispatches by instruction set";
            return false;
        }
        var handle = LoadGlobal(ConstantFunctionObject.Build(VendorCheck, 1), out reason);
        return handle != IntPtr.Zero;
    }

    /// <summary>
    /// dlopen(RTLD_NOW | RTLD_GLOBAL) of an object given as bytes: from a memfd, else from a temporary file deleted
    /// once loaded. Returns the handle (never closed: the object must stay for the process's life), or zero with the
    /// loader's message in <paramref name="error"/>.
    /// </summary>
    internal static IntPtr LoadGlobal(byte[] image, out string error)
    {
        try
        {
            int fd = memfd_create("microsoft-ml-lora", MFD_CLOEXEC);
            if (fd >= 0)
            {
                try
                {
                    if (WriteAll(fd, image))
                    {
                        var handle = Dl.Open($"/proc/self/fd/{fd}", RTLD_NOW | RTLD_GLOBAL);
                        if (handle != IntPtr.Zero) { error = ""; return handle; }
                    }
                }
                finally { close(fd); }
            }
        }
        catch (EntryPointNotFoundException)
        {
            // glibc before 2.27 has no memfd_create: the temporary file below.
        }

        string path = Path.Combine(Path.GetTempPath(), $"microsoft-ml-lora-{Environment.ProcessId}-{Guid.NewGuid():N}.so");
        try
        {
            File.WriteAllBytes(path, image);
            var handle = Dl.Open(path, RTLD_NOW | RTLD_GLOBAL);
            error = handle == IntPtr.Zero ? Dl.LastError() : "";
            return handle;
        }
        catch (IOException e) { error = e.Message; return IntPtr.Zero; }
        catch (UnauthorizedAccessException e) { error = e.Message; return IntPtr.Zero; }
        finally { try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { } }
    }

    /// <summary>The address <paramref name="symbol"/> resolves to in the process's global scope, or zero.</summary>
    internal static IntPtr GlobalSymbol(string symbol) => Dl.Symbol(IntPtr.Zero, symbol);   // RTLD_DEFAULT

    static unsafe bool WriteAll(int fd, byte[] image)
    {
        fixed (byte* start = image)
        {
            long done = 0;
            while (done < image.Length)
            {
                long n = write(fd, start + done, (nuint)(image.Length - done));
                if (n <= 0) return false;
                done += n;
            }
        }
        return true;
    }

    [DllImport("libc", SetLastError = true)]
    static extern int memfd_create(string name, uint flags);

    [DllImport("libc", SetLastError = true)]
    static extern unsafe nint write(int fd, byte* buffer, nuint count);

    [DllImport("libc")]
    static extern int close(int fd);

    /// <summary>dlopen/dlsym/dlerror: in libc since glibc 2.34, in libdl.so.2 before.</summary>
    static class Dl
    {
        static readonly bool InLibc = HasLibcDlopen();

        public static IntPtr Open(string path, int flags) => InLibc ? LibcDlopen(path, flags) : LibdlDlopen(path, flags);
        public static IntPtr Symbol(IntPtr handle, string name) => InLibc ? LibcDlsym(handle, name) : LibdlDlsym(handle, name);
        public static string LastError() => Marshal.PtrToStringAnsi(InLibc ? LibcDlerror() : LibdlDlerror()) ?? "dlopen failed";

        static bool HasLibcDlopen()
        {
            try { LibcDlerror(); return true; }
            catch (EntryPointNotFoundException) { return false; }
        }

        [DllImport("libc", EntryPoint = "dlopen")] static extern IntPtr LibcDlopen(string path, int flags);
        [DllImport("libc", EntryPoint = "dlsym")] static extern IntPtr LibcDlsym(IntPtr handle, string name);
        [DllImport("libc", EntryPoint = "dlerror")] static extern IntPtr LibcDlerror();
        [DllImport("libdl.so.2", EntryPoint = "dlopen")] static extern IntPtr LibdlDlopen(string path, int flags);
        [DllImport("libdl.so.2", EntryPoint = "dlsym")] static extern IntPtr LibdlDlsym(IntPtr handle, string name);
        [DllImport("libdl.so.2", EntryPoint = "dlerror")] static extern IntPtr LibdlDlerror();
    }
}
