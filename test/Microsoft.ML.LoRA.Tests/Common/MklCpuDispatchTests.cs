using System.Runtime.InteropServices;
using System.Text;
using TorchSharp;

namespace Microsoft.ML.LoRA.Tests.Common;

/// <summary>
/// MKL's vendor check answered "Intel" on other x86-64 CPUs, so that it picks kernels by instruction set
/// (docs/benchmarks.md measures what that is worth on a Zen 3).
/// </summary>
public class MklCpuDispatchTests
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    delegate int IntFunction();

    static bool LinuxX64 => OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64;

    static int Call(IntPtr function) => Marshal.GetDelegateForFunctionPointer<IntFunction>(function)();

    [Fact]
    public void The_built_object_loads_and_its_one_function_returns_the_constant()
    {
        if (!LinuxX64) return;
        string symbol = "microsoft_ml_lora_test_" + Guid.NewGuid().ToString("N");
        var image = ConstantFunctionObject.Build(symbol, -42);

        var handle = MklCpuDispatch.LoadGlobal(image, out var error);

        handle.Should().NotBe(IntPtr.Zero, error);
        var function = MklCpuDispatch.GlobalSymbol(symbol);
        function.Should().NotBe(IntPtr.Zero, "the object was loaded into the global scope");
        Call(function).Should().Be(-42);
    }

    [Fact]
    public void A_symbol_name_that_is_not_plain_ascii_is_refused()
    {
        var act = () => ConstantFunctionObject.Build("bad\0name", 1);
        act.Should().Throw<ArgumentException>();
        act = () => ConstantFunctionObject.Build("", 1);
        act.Should().Throw<ArgumentException>();
    }

    [Fact]
    public void On_a_cpu_that_is_not_intel_libtorchs_mkl_gets_the_answer_intel_and_on_intel_nothing_is_loaded()
    {
        if (!LinuxX64) return;
        bool optedOut = Environment.GetEnvironmentVariable("MICROSOFT_ML_LORA_NATIVE_TUNING") == "0"
            || Environment.GetEnvironmentVariable("MICROSOFT_ML_LORA_MKL_ANY_VENDOR") == "0";
        // A matrix product big enough for MKL: its first sgemm asks the vendor question, which binds libtorch's
        // lazily bound call to whichever definition the dynamic linker finds.
        using (var a = torch.ones(256, 256)) using (var product = a.mm(a)) product.sum().item<float>().Should().Be(256f * 256 * 256);

        var ours = MklCpuDispatch.GlobalSymbol(MklCpuDispatch.VendorCheck);
        if (optedOut || !MklCpuDispatch.IsNonIntelX86)
        {
            NativeRuntimeTuning.MklDispatchesByInstructionSet.Should().BeFalse(NativeRuntimeTuning.MklDispatchNote);
            ours.Should().Be(IntPtr.Zero, "nothing was loaded into the global scope (libtorch itself is loaded locally)");
            return;
        }

        NativeRuntimeTuning.MklDispatchesByInstructionSet.Should().BeTrue(NativeRuntimeTuning.MklDispatchNote);
        ours.Should().NotBe(IntPtr.Zero);
        Call(ours).Should().Be(1, "our definition says Intel");
        var (library, gotSlot) = LibtorchVendorCheckSlot();
        Marshal.ReadIntPtr(gotSlot).Should().Be(ours, $"{library}'s call to {MklCpuDispatch.VendorCheck} is bound to ours");
    }

    /// <summary>
    /// The address of the global offset table entry through which the loaded libtorch_cpu.so calls the vendor check:
    /// its load address (from /proc/self/maps) plus the offset its R_X86_64_JUMP_SLOT relocation names.
    /// </summary>
    static (string Library, IntPtr Slot) LibtorchVendorCheckSlot()
    {
        var mapping = File.ReadLines("/proc/self/maps")
            .Select(line => line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries))
            .First(f => f.Length == 6 && f[5].EndsWith("/libtorch_cpu.so", StringComparison.Ordinal) && Convert.ToInt64(f[2], 16) == 0);
        long loadAddress = Convert.ToInt64(mapping[0].Split('-')[0], 16);
        string path = mapping[5].Trim();
        long offset = JumpSlotOffset(path, MklCpuDispatch.VendorCheck);
        return (path, new IntPtr(loadAddress + offset));
    }

    /// <summary>r_offset of the PLT relocation (in .rela.plt) of <paramref name="symbol"/> in an x86-64 ELF shared object.</summary>
    static long JumpSlotOffset(string path, string symbol)
    {
        using var r = new BinaryReader(File.OpenRead(path));
        r.BaseStream.Seek(0x28, SeekOrigin.Begin);
        long sectionHeaders = r.ReadInt64();
        r.BaseStream.Seek(0x3A, SeekOrigin.Begin);
        int entrySize = r.ReadUInt16(), count = r.ReadUInt16(), namesIndex = r.ReadUInt16();
        var sections = new (uint Name, uint Type, long Offset, long Size, uint Link, long EntrySize)[count];
        for (int i = 0; i < count; i++)
        {
            r.BaseStream.Seek(sectionHeaders + (long)i * entrySize, SeekOrigin.Begin);
            uint name = r.ReadUInt32(), type = r.ReadUInt32();
            r.ReadInt64(); r.ReadInt64();                       // flags, address
            long offset = r.ReadInt64(), size = r.ReadInt64();
            uint link = r.ReadUInt32(); r.ReadUInt32(); r.ReadInt64();   // info, alignment
            sections[i] = (name, type, offset, size, link, r.ReadInt64());
        }
        string Text(long tableOffset, long at)
        {
            r.BaseStream.Seek(tableOffset + at, SeekOrigin.Begin);
            var bytes = new List<byte>();
            for (byte b; (b = r.ReadByte()) != 0;) bytes.Add(b);
            return Encoding.ASCII.GetString(bytes.ToArray());
        }
        var plt = sections.Single(s => s.Type == 4 && Text(sections[namesIndex].Offset, s.Name) == ".rela.plt");
        var symbols = sections[plt.Link];
        var names = sections[symbols.Link];
        for (long at = 0; at < plt.Size; at += plt.EntrySize)
        {
            r.BaseStream.Seek(plt.Offset + at, SeekOrigin.Begin);
            long slot = r.ReadInt64();
            long info = r.ReadInt64();
            r.BaseStream.Seek(symbols.Offset + (info >> 32) * symbols.EntrySize, SeekOrigin.Begin);
            uint nameAt = r.ReadUInt32();
            if (Text(names.Offset, nameAt) == symbol) return slot;
        }
        throw new InvalidOperationException($"{path} has no PLT relocation for {symbol}");
    }
}
