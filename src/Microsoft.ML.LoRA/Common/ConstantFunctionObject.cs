using System.Text;

namespace Microsoft.ML.LoRA;

/// <summary>
/// The bytes of the smallest x86-64 ELF shared object glibc's dynamic linker loads: it exports one function,
/// <c>int symbol(void)</c>, that returns a constant. <see cref="MklCpuDispatch"/> loads one to answer a question MKL asks.
/// </summary>
/// <remarks>
/// Layout (no section headers; the loader reads only the program headers and the dynamic section):
/// <code>
/// ELF header | 4 program headers | .hash | .dynsym | .dynstr | code: mov eax, value; ret | .dynamic
/// </code>
/// One read-and-execute segment maps everything up to the code's end at address 0. The dynamic section gets a
/// writable segment of its own one page higher (the same file offset, its address one page up), because glibc adjusts
/// the dynamic section's address entries in place when it loads an object. A PT_GNU_STACK header keeps the stack of the
/// process that loads it non-executable. No relocations: the code refers to nothing.
/// </remarks>
internal static class ConstantFunctionObject
{
    const int HeaderSize = 64, ProgramHeaderSize = 56, ProgramHeaders = 4, SymbolSize = 24, DynamicEntrySize = 16;
    const long Page = 0x1000;

    /// <summary>The object's bytes: <paramref name="symbol"/> (global, a function) returns <paramref name="value"/>.</summary>
    public static byte[] Build(string symbol, int value)
    {
        if (string.IsNullOrEmpty(symbol) || symbol.Any(c => c is '\0' or > '\x7e'))
            throw new ArgumentException("the symbol must be a non-empty ASCII name", nameof(symbol));
        byte[] name = Encoding.ASCII.GetBytes(symbol);

        int hash = HeaderSize + ProgramHeaders * ProgramHeaderSize;
        const int hashWords = 5;                  // nbucket = 1, nchain = 2, bucket[0], chain[0], chain[1]
        int symbols = Align(hash + hashWords * 4, 8);
        int strings = symbols + 2 * SymbolSize;   // the null symbol, then ours
        int stringsSize = 1 + name.Length + 1;    // "\0" symbol "\0"
        int code = Align(strings + stringsSize, 16);
        byte[] instructions = [0xB8, .. BitConverter.GetBytes(value), 0xC3];   // mov eax, imm32; ret
        int dynamic = Align(code + instructions.Length, 8);
        var entries = new (long Tag, long Value)[]
        {
            (4, hash),                  // DT_HASH
            (5, strings),               // DT_STRTAB
            (6, symbols),               // DT_SYMTAB
            (10, stringsSize),          // DT_STRSZ
            (11, SymbolSize),           // DT_SYMENT
            (0, 0),                     // DT_NULL
        };
        int size = dynamic + entries.Length * DynamicEntrySize;
        long dynamicAddress = Page + dynamic;

        var bytes = new byte[size];
        using var w = new BinaryWriter(new MemoryStream(bytes));
        // ELF header: 64-bit, little-endian, version 1, System V ABI; a shared object (ET_DYN) for x86-64.
        w.Write([0x7F, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        w.Write((ushort)3); w.Write((ushort)62); w.Write(1u);
        w.Write(0L);                                    // e_entry
        w.Write((long)HeaderSize);                      // e_phoff
        w.Write(0L);                                    // e_shoff: no section headers
        w.Write(0u);                                    // e_flags
        w.Write((ushort)HeaderSize); w.Write((ushort)ProgramHeaderSize); w.Write((ushort)ProgramHeaders);
        w.Write((ushort)64); w.Write((ushort)0); w.Write((ushort)0);

        const uint R = 4, W = 2, X = 1;
        ProgramHeader(w, type: 1, R | X, offset: 0, address: 0, length: dynamic, align: Page);                        // PT_LOAD
        ProgramHeader(w, type: 1, R | W, dynamic, dynamicAddress, size - dynamic, Page);                                 // PT_LOAD
        ProgramHeader(w, type: 2, R | W, dynamic, dynamicAddress, size - dynamic, 8);                                    // PT_DYNAMIC
        ProgramHeader(w, type: 0x6474E551, R | W, 0, 0, 0, 16);                                                          // PT_GNU_STACK

        // One bucket holding symbol 1, whose chain ends there: every name hashes into it.
        w.Seek(hash, SeekOrigin.Begin);
        foreach (uint word in new uint[] { 1, 2, 1, 0, 0 }) w.Write(word);

        w.Seek(symbols + SymbolSize, SeekOrigin.Begin);
        w.Write(1u);                                    // st_name: just after the leading NUL
        w.Write((byte)0x12);                            // st_info: STB_GLOBAL, STT_FUNC
        w.Write((byte)0);                               // st_other: default visibility
        w.Write((ushort)1);                             // st_shndx: defined (any index but SHN_UNDEF and SHN_ABS)
        w.Write((long)code);                            // st_value
        w.Write((long)instructions.Length);             // st_size

        w.Seek(strings + 1, SeekOrigin.Begin);
        w.Write(name);
        w.Seek(code, SeekOrigin.Begin);
        w.Write(instructions);
        w.Seek(dynamic, SeekOrigin.Begin);
        foreach (var (tag, entryValue) in entries) { w.Write(tag); w.Write(entryValue); }
        return bytes;
    }

    static void ProgramHeader(BinaryWriter w, uint type, uint flags, long offset, long address, long length, long align)
    {
        w.Write(type); w.Write(flags);
        w.Write(offset); w.Write(address); w.Write(address);
        w.Write(length); w.Write(length);
        w.Write(align);
    }

    static int Align(int offset, int to) => (offset + to - 1) / to * to;
}
