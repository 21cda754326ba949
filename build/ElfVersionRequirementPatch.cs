#nullable disable
// Compiled by MSBuild's RoslynCodeTaskFactory (see Microsoft.ML.LoRA.targets) and, with ELF_PATCH_NO_MSBUILD
// defined, by the test project. Keep it to netstandard2.0 APIs: no Span, no records, no init-only setters.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace Microsoft.ML.LoRA.Build
{
    /// <summary>One entry of an ELF file's .gnu.version_r section: a symbol version the file needs from a library.</summary>
    public sealed class ElfVersionRequirement
    {
        public string Library = "";
        public string Version = "";
        public ushort Flags;
        public ushort Index;
        /// <summary>File offset of the 16-bit vna_flags field.</summary>
        public long FlagsOffset;
        /// <summary>Dynamic symbols bound to this version (through .gnu.version).</summary>
        public List<string> Symbols = new List<string>();

        public const ushort WeakFlag = 0x2; // VER_FLG_WEAK

        public bool IsWeak { get { return (Flags & WeakFlag) != 0; } }
    }

    public enum ElfPatchOutcome { Patched, AlreadyWeak, NotRequired, Refused }

    /// <summary>Reads the symbol-versioning sections of a little-endian ELF64 file and marks one requirement weak.</summary>
    public static class ElfVersionRequirementPatch
    {
        const uint ShtDynsym = 11;
        const uint ShtGnuVerdef = 0x6ffffffd;
        const uint ShtGnuVerneed = 0x6ffffffe;
        const uint ShtGnuVersym = 0x6fffffff;

        sealed class Section
        {
            public uint Type; public long Offset; public long Size; public uint Link; public uint Info; public long EntSize;
        }

        /// <summary>Lists the version requirements of an ELF file, with the symbols bound to each.</summary>
        public static List<ElfVersionRequirement> ReadRequirements(byte[] elf)
        {
            var sections = ReadSections(elf);
            var result = new List<ElfVersionRequirement>();
            Section verneed = Find(sections, ShtGnuVerneed);
            if (verneed == null) return result;
            Section strtab = At(sections, verneed.Link);
            long entry = verneed.Offset;
            for (uint i = 0; i < verneed.Info; i++)
            {
                ushort count = U16(elf, entry + 2);
                string library = CString(elf, strtab, U32(elf, entry + 4));
                long aux = entry + U32(elf, entry + 8);
                for (int j = 0; j < count; j++)
                {
                    var req = new ElfVersionRequirement
                    {
                        Library = library,
                        Flags = U16(elf, aux + 4),
                        Index = U16(elf, aux + 6),
                        FlagsOffset = aux + 4,
                        Version = CString(elf, strtab, U32(elf, aux + 8)),
                    };
                    result.Add(req);
                    uint nextAux = U32(elf, aux + 12);
                    if (nextAux == 0) break;
                    aux += nextAux;
                }
                uint next = U32(elf, entry + 12);
                if (next == 0) break;
                entry += next;
            }
            BindSymbols(elf, sections, result);
            return result;
        }

        /// <summary>True when the ELF file (a shared library) defines the given symbol version (.gnu.version_d).</summary>
        public static bool DefinesVersion(byte[] elf, string version)
        {
            var sections = ReadSections(elf);
            Section verdef = Find(sections, ShtGnuVerdef);
            if (verdef == null) return false;
            Section strtab = At(sections, verdef.Link);
            long entry = verdef.Offset;
            for (uint i = 0; i < verdef.Info; i++)
            {
                long aux = entry + U32(elf, entry + 12);
                if (CString(elf, strtab, U32(elf, aux)) == version) return true;
                uint next = U32(elf, entry + 16);
                if (next == 0) break;
                entry += next;
            }
            return false;
        }

        /// <summary>
        /// Marks the requirement on <paramref name="version"/> weak in <paramref name="path"/>, provided every symbol
        /// bound to it is in <paramref name="allowedSymbols"/>. The file is replaced through a temporary file and a
        /// rename, so a hard link to it (for example into a package cache) is never written through.
        /// </summary>
        public static ElfPatchOutcome MakeWeak(string path, string version, ICollection<string> allowedSymbols, out string message)
        {
            byte[] elf = File.ReadAllBytes(path);
            ElfVersionRequirement target = null;
            foreach (var req in ReadRequirements(elf))
                if (req.Version == version) { target = req; break; }
            if (target == null) { message = path + " does not require " + version; return ElfPatchOutcome.NotRequired; }
            if (target.IsWeak) { message = path + ": " + version + " is already weak"; return ElfPatchOutcome.AlreadyWeak; }
            foreach (var symbol in target.Symbols)
            {
                if (!allowedSymbols.Contains(symbol))
                {
                    message = path + ": symbol " + symbol + " needs " + version + "; marking it weak would break it at run time";
                    return ElfPatchOutcome.Refused;
                }
            }
            ushort flags = (ushort)(target.Flags | ElfVersionRequirement.WeakFlag);
            elf[target.FlagsOffset] = (byte)(flags & 0xff);
            elf[target.FlagsOffset + 1] = (byte)(flags >> 8);
            string temp = path + ".lora-weak.tmp";
            File.WriteAllBytes(temp, elf);
            File.Replace(temp, path, null);   // a rename: the old inode (maybe shared with a cache) is left as it was
            message = path + ": marked " + version + " weak (" + string.Join(", ", target.Symbols) + ")";
            return ElfPatchOutcome.Patched;
        }

        /// <summary>The libstdc++.so.6 files the dynamic loader may pick, most likely first.</summary>
        public static List<string> SystemLibStdCxxCandidates()
        {
            var dirs = new List<string>();
            string ld = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH");
            if (!string.IsNullOrEmpty(ld)) dirs.AddRange(ld.Split(':'));
            dirs.AddRange(new[] { "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                "/lib/aarch64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib", "/lib", "/usr/local/lib", "/usr/local/lib64" });
            var found = new List<string>();
            foreach (var dir in dirs)
            {
                if (string.IsNullOrEmpty(dir)) continue;
                string candidate = Path.Combine(dir, "libstdc++.so.6");
                if (File.Exists(candidate) && !found.Contains(candidate)) found.Add(candidate);
            }
            return found;
        }

        /// <summary>True when the first libstdc++ the loader would find already defines <paramref name="version"/>.</summary>
        public static bool SystemProvides(string version, out string library)
        {
            library = null;
            foreach (var candidate in SystemLibStdCxxCandidates())
            {
                library = candidate;
                try { return DefinesVersion(File.ReadAllBytes(candidate), version); }
                catch (Exception) { continue; }
            }
            return false;
        }

        static void BindSymbols(byte[] elf, List<Section> sections, List<ElfVersionRequirement> requirements)
        {
            Section versym = Find(sections, ShtGnuVersym);
            Section dynsym = Find(sections, ShtDynsym);
            if (versym == null || dynsym == null) return;
            Section strtab = At(sections, dynsym.Link);
            long count = dynsym.Size / 24;
            for (long i = 0; i < count && 2 * i + 1 < versym.Size; i++)
            {
                ushort index = (ushort)(U16(elf, versym.Offset + 2 * i) & 0x7fff);
                if (index < 2) continue;
                foreach (var req in requirements)
                    if (req.Index == index) req.Symbols.Add(CString(elf, strtab, U32(elf, dynsym.Offset + 24 * i)));
            }
        }

        static List<Section> ReadSections(byte[] elf)
        {
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
                throw new InvalidDataException("not an ELF file");
            if (elf[4] != 2 || elf[5] != 1) throw new InvalidDataException("only little-endian ELF64 files are supported");
            long shoff = (long)U64(elf, 0x28);
            ushort shentsize = U16(elf, 0x3a);
            ushort shnum = U16(elf, 0x3c);
            if (shentsize < 64 || shoff <= 0 || shoff + (long)shnum * shentsize > elf.Length)
                throw new InvalidDataException("section header table lies outside the file");
            var sections = new List<Section>();
            for (int i = 0; i < shnum; i++)
            {
                long h = shoff + (long)i * shentsize;
                var s = new Section
                {
                    Type = U32(elf, h + 4), Offset = (long)U64(elf, h + 24), Size = (long)U64(elf, h + 32),
                    Link = U32(elf, h + 40), Info = U32(elf, h + 44), EntSize = (long)U64(elf, h + 56),
                };
                if (s.Type != 8 /* NOBITS */ && (s.Offset < 0 || s.Size < 0 || s.Offset + s.Size > elf.Length))
                    throw new InvalidDataException("section " + i + " lies outside the file");
                sections.Add(s);
            }
            return sections;
        }

        static Section Find(List<Section> sections, uint type)
        {
            foreach (var s in sections) if (s.Type == type) return s;
            return null;
        }

        static Section At(List<Section> sections, uint index)
        {
            if (index >= sections.Count) throw new InvalidDataException("section link " + index + " out of range");
            return sections[(int)index];
        }

        static string CString(byte[] elf, Section strtab, uint offset)
        {
            long start = strtab.Offset + offset;
            long end = start;
            long limit = strtab.Offset + strtab.Size;
            while (end < limit && elf[end] != 0) end++;
            if (end >= limit) throw new InvalidDataException("string runs past its table");
            return Encoding.ASCII.GetString(elf, (int)start, (int)(end - start));
        }

        static void Check(byte[] elf, long at, int size)
        {
            if (at < 0 || at + size > elf.Length) throw new InvalidDataException("read past the end of the file at " + at);
        }

        static ushort U16(byte[] b, long at) { Check(b, at, 2); return (ushort)(b[at] | b[at + 1] << 8); }
        static uint U32(byte[] b, long at) { Check(b, at, 4); return (uint)(b[at] | b[at + 1] << 8 | b[at + 2] << 16 | b[at + 3] << 24); }
        static ulong U64(byte[] b, long at) { return U32(b, at) | (ulong)U32(b, at + 4) << 32; }
    }

#if !ELF_PATCH_NO_MSBUILD
    /// <summary>MSBuild task: weakens one GLIBCXX version requirement in the given files unless the system has it.</summary>
    public class WeakenElfVersionRequirement : Microsoft.Build.Utilities.Task
    {
        [Microsoft.Build.Framework.Required] public Microsoft.Build.Framework.ITaskItem[] Files { get; set; }
        [Microsoft.Build.Framework.Required] public string Version { get; set; }
        [Microsoft.Build.Framework.Required] public string AllowedSymbols { get; set; }

        public override bool Execute()
        {
            string library;
            if (ElfVersionRequirementPatch.SystemProvides(Version, out library))
            {
                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, library + " defines " + Version + "; nothing to patch");
                return true;
            }
            var allowed = new HashSet<string>(AllowedSymbols.Split(new[] { ';', ',' }, StringSplitOptions.RemoveEmptyEntries));
            foreach (var item in Files)
            {
                string message;
                try
                {
                    var outcome = ElfVersionRequirementPatch.MakeWeak(item.ItemSpec, Version, allowed, out message);
                    if (outcome == ElfPatchOutcome.Refused) Log.LogWarning(message);
                    else Log.LogMessage(outcome == ElfPatchOutcome.Patched ? Microsoft.Build.Framework.MessageImportance.Normal
                                                                          : Microsoft.Build.Framework.MessageImportance.Low, message);
                }
                catch (Exception e)
                {
                    Log.LogWarning("could not inspect " + item.ItemSpec + ": " + e.Message);
                }
            }
            return true;
        }
    }
#endif
}
