using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;

namespace Microsoft.ML.LoRA.Persistence;

/// <summary>
/// Reads a saved model's zip so that every byte used is checked: entry names are validated when the file opens
/// (no '..', '.', empty or absolute segments, backslashes, control characters, nested folders inside the model's
/// own folders, duplicates), declared sizes are checked against the manifest's entry table or
/// <see cref="LoraModelFileLimits"/> before anything is read, and each entry read is counted (reading stops one byte
/// past its declared size), checked against the zip's CRC-32 and, when the manifest records it, its size and
/// SHA-256. Every failure is a <see cref="ModelFileException"/> naming the file and the entry.
/// </summary>
internal sealed class ModelFileReader : IDisposable
{
    public const string ManifestEntry = "lora-model.json";
    public const string BeforeEntry = "pipeline/before.zip";
    public const string AfterEntry = "pipeline/after.zip";
    public const string AdapterFolder = "adapter/";
    public const string WeightsFolder = "weights/";
    public const string TokenizerFolder = "tokenizer/";
    public const string BaseFolder = "base/";
    const string PipelineFolder = "pipeline/";

    static readonly string[] OwnFolders = { PipelineFolder, AdapterFolder, WeightsFolder, TokenizerFolder, BaseFolder };

    readonly ZipArchive _zip;
    readonly Dictionary<string, ZipArchiveEntry> _entries = new(StringComparer.Ordinal);

    ModelFileReader(string path, ZipArchive zip)
    {
        Path = path;
        _zip = zip;
        IReadOnlyCollection<ZipArchiveEntry> entries;
        try { entries = zip.Entries; }
        catch (InvalidDataException e) { throw new ModelFileException(path, null, $"not a LoRA model file: its zip directory is damaged ({e.Message})", e); }
        foreach (var entry in entries)
        {
            if (NameProblem(entry.FullName) is { } problem) throw Fail(entry.FullName, problem);
            if (!_entries.TryAdd(entry.FullName, entry)) throw Fail(entry.FullName, "appears twice in the zip");
            if (entry.Name.Length == 0 && entry.Length != 0) throw Fail(entry.FullName, "is a folder entry with content");
        }
        Manifest = ReadManifest();
        CheckEntryTable();
        foreach (var entry in _entries.Values.Where(e => e.Name.Length > 0 && IsOwn(e.FullName)))
            if (entry.Length > Limit(entry))
                throw Fail(entry.FullName, $"declares {entry.Length:N0} bytes, more than the {Limit(entry):N0} {LimitReason(entry)}");
    }

    /// <summary>The model file.</summary>
    public string Path { get; }

    /// <summary>Its manifest.</summary>
    public LoraModelManifest Manifest { get; }

    /// <summary>Opens <paramref name="path"/> and reads and checks its manifest and entry names.</summary>
    public static ModelFileReader Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Model file not found: {path}", path);
        ZipArchive zip;
        try { zip = ZipFile.OpenRead(path); }
        catch (InvalidDataException e) { throw new ModelFileException(path, null, $"not a LoRA model file (not a zip: {e.Message})", e); }
        try { return new ModelFileReader(path, zip); }
        catch
        {
            zip.Dispose();
            throw;
        }
    }

    /// <summary>The files (not folder entries) directly in <paramref name="folder"/> (for example "adapter/"), by name.</summary>
    public IReadOnlyList<ZipArchiveEntry> Files(string folder) =>
        _entries.Values.Where(e => e.Name.Length > 0 && e.FullName.StartsWith(folder, StringComparison.Ordinal))
            .OrderBy(e => e.FullName, StringComparer.Ordinal).ToList();

    /// <summary>The entry named <paramref name="name"/>, or a <see cref="ModelFileException"/> saying it is missing.</summary>
    public ZipArchiveEntry Require(string name, string? why = null) =>
        _entries.TryGetValue(name, out var entry) ? entry : throw Fail(name, "is missing" + (why is null ? "" : $" ({why})"));

    /// <summary>The checked content of <paramref name="name"/>.</summary>
    public byte[] ReadAllBytes(string name) => ReadAllBytes(Require(name));

    /// <summary>The checked content of <paramref name="entry"/>.</summary>
    public byte[] ReadAllBytes(ZipArchiveEntry entry)
    {
        if (entry.Length > Array.MaxLength) throw Fail(entry.FullName, $"declares {entry.Length:N0} bytes, too many to read into memory");
        var memory = new MemoryStream((int)entry.Length);
        CopyTo(entry, memory);
        return memory.Length == memory.Capacity ? memory.GetBuffer() : memory.ToArray();
    }

    /// <summary>Writes the checked content of <paramref name="entry"/> to <paramref name="file"/>.</summary>
    public void ExtractTo(ZipArchiveEntry entry, string file)
    {
        using var target = new FileStream(file, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        CopyTo(entry, target);
    }

    /// <summary>Writes the checked files directly in <paramref name="prefix"/> into <paramref name="folder"/>.</summary>
    public void ExtractFolder(string prefix, string folder)
    {
        Directory.CreateDirectory(folder);
        foreach (var entry in Files(prefix)) ExtractTo(entry, System.IO.Path.Combine(folder, entry.Name));
    }

    /// <summary>Reads <paramref name="entry"/> through and checks it, keeping nothing.</summary>
    public void Verify(ZipArchiveEntry entry) => CopyTo(entry, Stream.Null);

    /// <summary>
    /// Copies the checked content of <paramref name="entry"/> to <paramref name="destination"/> (see
    /// <see cref="OpenChecked"/>). On failure what was written is partial: callers discard it.
    /// </summary>
    public void CopyTo(ZipArchiveEntry entry, Stream destination)
    {
        using var source = OpenChecked(entry);
        source.CopyTo(destination, 1 << 20);
    }

    /// <summary>
    /// A forward-only stream over the content of <paramref name="entry"/> that counts the bytes as they inflate
    /// (failing one byte past the declared size) and, once read to its end, checks the CRC-32 and, when the manifest
    /// records them, the size and SHA-256. A reader that may stop early calls <see cref="CheckedEntryStream.ReadToEnd"/>
    /// so that the checks run. Every failure is a <see cref="ModelFileException"/> naming the entry.
    /// </summary>
    public CheckedEntryStream OpenChecked(ZipArchiveEntry entry)
    {
        long limit = Limit(entry);
        if (entry.Length > limit) throw Fail(entry.FullName, $"declares {entry.Length:N0} bytes, more than the {limit:N0} {LimitReason(entry)}");
        Stream source;
        try { source = entry.Open(); }
        catch (Exception e) when (e is InvalidDataException or IOException and not ModelFileException)
        {
            throw Fail(entry.FullName, $"cannot be read: the file is damaged ({e.Message})", e);
        }
        return new CheckedEntryStream(this, entry, source, Manifest?.Entries?.GetValueOrDefault(entry.FullName));
    }

    /// <summary>The stream <see cref="OpenChecked"/> returns.</summary>
    internal sealed class CheckedEntryStream : Stream
    {
        readonly ModelFileReader _file;
        readonly ZipArchiveEntry _entry;
        readonly Stream _source;
        readonly LoraModelEntry? _recorded;
        readonly Crc32 _crc = new();
        readonly IncrementalHash? _sha;
        long _total;
        bool _checked;

        public CheckedEntryStream(ModelFileReader file, ZipArchiveEntry entry, Stream source, LoraModelEntry? recorded)
        {
            _file = file;
            _entry = entry;
            _source = source;
            _recorded = recorded;
            _sha = recorded is null ? null : IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        }

        /// <summary>The entry's declared (and, once read through, checked) length.</summary>
        public override long Length => _entry.Length;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_checked || buffer.Length == 0) return 0;
            string name = _entry.FullName;
            long declared = _entry.Length;
            int n;
            // At most one byte past the declared size is ever asked for, so an entry that inflates further stops here.
            try { n = _source.Read(buffer[..(int)Math.Min(buffer.Length, declared - _total + 1)]); }
            catch (Exception e) when (e is InvalidDataException or IOException and not ModelFileException)
            {
                throw _file.Fail(name, $"cannot be read: the file is damaged ({e.Message})", e);
            }
            if (n == 0)
            {
                Check();
                return 0;
            }
            _total += n;
            if (_total > declared)
                throw _file.Fail(name, $"inflates to more than the {declared:N0} bytes its zip header declares; reading stopped there. The file is damaged or was tampered with.");
            _crc.Append(buffer[..n]);
            _sha?.AppendData(buffer[..n]);
            return n;
        }

        /// <summary>Reads what is left, discarding it, so that the size, CRC-32 and SHA-256 are checked.</summary>
        public void ReadToEnd() => CopyTo(Null, 1 << 20);

        void Check()
        {
            string name = _entry.FullName;
            if (_total != _entry.Length)
                throw _file.Fail(name, $"inflates to {_total:N0} bytes, but its zip header declares {_entry.Length:N0}: the file is damaged");
            if (_crc.Value != _entry.Crc32)
                throw _file.Fail(name, $"its bytes have CRC-32 {_crc.Value:x8}, the zip records {_entry.Crc32:x8}: the file is damaged");
            if (_sha is not null)
            {
                var actual = Convert.ToHexStringLower(_sha.GetHashAndReset());
                if (!string.Equals(actual, _recorded!.Sha256, StringComparison.OrdinalIgnoreCase))
                    throw _file.Fail(name, $"its bytes hash to SHA-256 {actual[..16]}..., the manifest records {Short(_recorded.Sha256)}: the file was damaged or altered after saving");
            }
            _checked = true;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Position { get => _total; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _source.Dispose();
                _sha?.Dispose();
            }
            base.Dispose(disposing);
        }
    }

    /// <summary>A <see cref="ModelFileException"/> about <paramref name="entry"/> of this file.</summary>
    public ModelFileException Fail(string? entry, string problem, Exception? inner = null) => new(Path, entry, problem, inner);

    public void Dispose() => _zip.Dispose();

    LoraModelManifest ReadManifest()
    {
        var entry = _entries.GetValueOrDefault(ManifestEntry)
            ?? throw Fail(ManifestEntry, "is missing: this is not a file written by SaveWithLora (an ML.NET model file loads with mlContext.Model.Load)");
        var bytes = ReadAllBytes(entry);
        LoraModelManifest? manifest;
        try { manifest = JsonSerializer.Deserialize<LoraModelManifest>(bytes, LoraModelManifest.Json); }
        catch (JsonException e) { throw Fail(ManifestEntry, $"is not a valid manifest ({e.Message})", e); }
        if (manifest is null) throw Fail(ManifestEntry, "is empty (JSON null)");
        if (manifest.FormatVersion > LoraModelManifest.CurrentFormatVersion)
            throw Fail(ManifestEntry, $"the file was written in format {manifest.FormatVersion}; this library reads up to {LoraModelManifest.CurrentFormatVersion}. Update Microsoft.ML.LoRA.");
        return manifest;
    }

    /// <summary>With an entry table: every own entry is listed, every listed entry exists and declares the recorded size.</summary>
    void CheckEntryTable()
    {
        if (Manifest.Entries is not { } table) return;
        foreach (var (name, record) in table)
        {
            if (record is null || record.Size < 0 || record.Sha256 is not { Length: 64 })
                throw Fail(ManifestEntry, $"its entry table has a malformed record for '{name}'");
            var entry = _entries.GetValueOrDefault(name) ?? throw Fail(name, "is listed in the manifest but missing from the zip");
            if (entry.Length != record.Size)
                throw Fail(name, $"declares {entry.Length:N0} bytes, the manifest records {record.Size:N0}: the file is damaged or was altered after saving");
        }
        foreach (var entry in _entries.Values.Where(e => e.Name.Length > 0 && IsOwn(e.FullName) && e.FullName != ManifestEntry && !table.ContainsKey(e.FullName)))
            throw Fail(entry.FullName, "is not listed in the manifest's entry table: it was added after saving");
    }

    /// <summary>The most bytes <paramref name="entry"/> may inflate to (see <see cref="LoraModelFileLimits"/>).</summary>
    long Limit(ZipArchiveEntry entry)
    {
        string name = entry.FullName;
        if (name == ManifestEntry) return LoraModelFileLimits.MaxManifestBytes;
        if (Manifest?.Entries?.GetValueOrDefault(name) is { } recorded) return recorded.Size;
        if (name.StartsWith(PipelineFolder, StringComparison.Ordinal)) return LoraModelFileLimits.MaxPipelineBytes;
        if (name.StartsWith(TokenizerFolder, StringComparison.Ordinal)) return LoraModelFileLimits.MaxTokenizerFileBytes;
        if (name.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return LoraModelFileLimits.MaxJsonBytes;
        return LoraModelFileLimits.MaxWeightsInflation * entry.CompressedLength + LoraModelFileLimits.WeightsInflationSlackBytes;
    }

    string LimitReason(ZipArchiveEntry entry)
    {
        string name = entry.FullName;
        if (name == ManifestEntry) return "a manifest may have";
        if (Manifest?.Entries?.ContainsKey(name) == true) return "the manifest records";
        if (name.StartsWith(PipelineFolder, StringComparison.Ordinal) || name.StartsWith(TokenizerFolder, StringComparison.Ordinal)
            || name.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            return "allowed for it (LoraModelFileLimits)";
        return $"allowed for weights stored in {entry.CompressedLength:N0} bytes (LoraModelFileLimits)";
    }

    static bool IsOwn(string name) =>
        name == ManifestEntry || OwnFolders.Any(f => name.StartsWith(f, StringComparison.Ordinal));

    /// <summary>Why <paramref name="name"/> is not an acceptable entry name, or null.</summary>
    internal static string? NameProblem(string name)
    {
        if (name.Length == 0) return "has an empty name";
        if (name.Any(c => c < ' ' || c == '\\' || c == ':' || c == '\u007f'))
            return "has a name with a backslash, colon or control character, which a saved model never has";
        if (name[0] == '/') return "has an absolute name, which a saved model never has";
        var segments = (name.EndsWith('/') ? name[..^1] : name).Split('/');
        if (segments.Any(s => s is "" or "." or ".."))
            return "has a name with an empty, '.' or '..' part, which a saved model never has";
        if (segments.Length > 2 && OwnFolders.Contains(segments[0] + "/"))
            return $"is nested inside {segments[0]}/, which holds files only";
        return null;
    }

    static string Short(string hex) => hex.Length > 16 ? hex[..16] + "..." : hex;
}
