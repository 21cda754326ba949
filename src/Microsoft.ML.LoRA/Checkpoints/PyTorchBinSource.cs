using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Microsoft.ML.LoRA.Checkpoints.Pickle;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Checkpoints;

/// <summary>
/// Tensors of a <c>pytorch_model.bin</c> written by <c>torch.save</c> since PyTorch 1.6: a zip archive holding
/// <c>&lt;name&gt;/data.pkl</c> (the pickled state dict), one <c>&lt;name&gt;/data/&lt;key&gt;</c> entry per storage and
/// optionally <c>&lt;name&gt;/byteorder</c>. The pickle is read by a restricted unpickler that never executes code and
/// refuses any file referencing something other than tensors, storages and <c>collections.OrderedDict</c>. Tensors
/// are views of storages (offset, size, stride), so transposed tensors and tensors sharing a storage read correctly.
/// Every size is checked against the archive before anything is allocated. The legacy pre-1.6 format is refused
/// with a conversion hint. An instance keeps the archive open until disposed and is not safe for concurrent reads.
/// </summary>
public sealed class PyTorchBinSource : ITensorSource
{
    /// <summary>Largest <c>data.pkl</c> accepted (a state dict's pickle is a few hundred KB even for large models).</summary>
    public const long MaxPickleBytes = 64L * 1024 * 1024;

    /// <summary>Deflate cannot expand data by more than about 1032:1; a zip entry claiming more is corrupt.</summary>
    const long MaxDeflateRatio = 1032;

    const string ConversionHint =
        "Convert the folder to safetensors in Python: AutoModelForSequenceClassification.from_pretrained(folder).save_pretrained(folder, safe_serialization=True)";

    readonly FileStream _stream;
    readonly ZipArchive _zip;
    readonly Dictionary<string, ZipArchiveEntry> _entries;
    readonly Dictionary<string, TorchTensorRef> _tensors;
    readonly bool _bigEndian;

    PyTorchBinSource(string path, FileStream stream, ZipArchive zip, Dictionary<string, ZipArchiveEntry> entries,
        Dictionary<string, TorchTensorRef> tensors, bool bigEndian)
    {
        Path = path;
        _stream = stream;
        _zip = zip;
        _entries = entries;
        _tensors = tensors;
        _bigEndian = bigEndian;
        Files = new[] { path };
    }

    /// <summary>Full path of the archive.</summary>
    public string Path { get; }

    /// <inheritdoc/>
    public IReadOnlyList<string> Files { get; }

    /// <inheritdoc/>
    public IReadOnlyCollection<string> Names => _tensors.Keys;

    /// <summary>
    /// Opens a torch.save archive and reads its state dict's structure (names, shapes, storages); tensor data is read
    /// on demand.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CheckpointFormatException">
    /// The file is not a readable torch.save archive, is in the legacy format, or references anything but tensors.
    /// </exception>
    public static PyTorchBinSource Open(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"PyTorch checkpoint not found: {full}", full);
        var stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        ZipArchive? zip = null;
        try
        {
            CheckIsZip(full, stream);
            zip = Zip(full, () => new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true));
            var entries = Zip(full, () => IndexEntries(full, zip));
            var prefix = FindRecordPrefix(full, entries);
            bool bigEndian = ReadByteOrder(full, entries, prefix, stream.Length);
            var pickle = ReadEntryBytes(full, entries[prefix + "data.pkl"], MaxPickleBytes, stream.Length);
            var unpickler = new RestrictedUnpickler(pickle, full,
                (key, type, count) => LocateStorage(full, entries, prefix, key, type, count, stream.Length));
            var tensors = ToStateDict(full, unpickler.Load());
            return new PyTorchBinSource(full, stream, zip, entries, tensors, bigEndian);
        }
        catch
        {
            zip?.Dispose();
            stream.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens the shards listed in a <c>pytorch_model.bin.index.json</c> (its <c>weight_map</c>) and checks each tensor is
    /// in the shard the index names.
    /// </summary>
    public static ITensorSource OpenIndex(string indexPath) => ShardedTensorSource.Open(ShardIndex.Read(indexPath), Open);

    /// <inheritdoc/>
    public long[] Shape(string name) => Tensor(name).Shape.ToArray();

    /// <inheritdoc/>
    public ScalarType StoredType(string name) => Tensor(name).Storage.ElementType.ScalarType;

    /// <inheritdoc/>
    public Tensor ReadFloat32(string name)
    {
        var raw = ReadRaw(name);
        if (raw.dtype == ScalarType.Float32) return raw;
        using (raw) return raw.to_type(ScalarType.Float32);
    }

    /// <summary>Reads one tensor, contiguous, in its stored element type; the caller disposes it.</summary>
    public Tensor ReadRaw(string name)
    {
        var tensor = Tensor(name);
        var type = tensor.Storage.ElementType;
        if (tensor.ElementCount == 0) return torch.empty(tensor.Shape, type.ScalarType);
        // BOOL is read as bytes and compared with zero: a byte other than 0 or 1 is not a valid C++ bool.
        var buffer = torch.empty(new[] { tensor.Span }, type.ScalarType == ScalarType.Bool ? ScalarType.Byte : type.ScalarType);
        try
        {
            Zip(Path, () =>
            {
                using var entry = _entries[tensor.Storage.EntryName].Open();
                Skip(entry, tensor.StorageOffset * type.Size);
                TensorBytes.ReadInto(entry, buffer);
                return true;
            });
            if (_bigEndian) TensorBytes.SwapByteOrder(buffer);
            using var view = buffer.as_strided(tensor.Shape, tensor.Stride, 0);
            if (type.ScalarType == ScalarType.Bool) return view.ne(Scalars.Zero);
            return view.contiguous();
        }
        finally
        {
            buffer.Dispose();
        }
    }

    /// <summary>Closes the archive.</summary>
    public void Dispose()
    {
        _zip.Dispose();
        _stream.Dispose();
    }

    TorchTensorRef Tensor(string name) =>
        _tensors.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"tensor '{name}' is not in {Path}");

    static void CheckIsZip(string path, FileStream stream)
    {
        Span<byte> head = stackalloc byte[16];
        int read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        head = head[..read];
        stream.Position = 0;
        if (head.StartsWith("PK\x03\x04"u8) || head.StartsWith("PK\x05\x06"u8)) return;
        if (read < 4)
            throw new CheckpointFormatException(path, $"file is {read} bytes long; too short to be a PyTorch checkpoint");
        if (head[0] == 0x80)
            throw new CheckpointFormatException(path,
                "is in PyTorch's legacy serialization format (torch.save before PyTorch 1.6, or _use_new_zipfile_serialization=False), " +
                "which this library does not read. " + ConversionHint);
        if (read >= 9 && head[8] == (byte)'{' && BinaryPrimitives.ReadUInt64LittleEndian(head) < (ulong)stream.Length)
            throw new CheckpointFormatException(path, "is a safetensors file, not a PyTorch checkpoint; name it model.safetensors");
        throw new CheckpointFormatException(path,
            "is not a PyTorch checkpoint: it is neither a zip archive (torch.save since PyTorch 1.6) nor a legacy pickle");
    }

    static Dictionary<string, ZipArchiveEntry> IndexEntries(string path, ZipArchive zip)
    {
        var entries = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
        foreach (var entry in zip.Entries)
            if (!entries.TryAdd(entry.FullName, entry))
                throw new CheckpointFormatException(path, $"zip entry '{entry.FullName}' appears twice");
        return entries;
    }

    /// <summary>The <c>&lt;name&gt;/</c> folder holding <c>data.pkl</c> (torch.save names it after the file or "archive").</summary>
    static string FindRecordPrefix(string path, Dictionary<string, ZipArchiveEntry> entries)
    {
        var pickles = entries.Keys.Where(n => n.EndsWith("/data.pkl", StringComparison.Ordinal) && n.IndexOf('/') == n.Length - "/data.pkl".Length).ToList();
        if (pickles.Count == 1) return pickles[0][..^"data.pkl".Length];
        if (pickles.Count > 1)
            throw new CheckpointFormatException(path, $"holds {pickles.Count} data.pkl records ({string.Join(", ", pickles.Take(3))}); a torch.save archive has one");
        if (entries.Keys.Any(n => n.EndsWith("/constants.pkl", StringComparison.Ordinal) || n.Contains("/code/", StringComparison.Ordinal)))
            throw new CheckpointFormatException(path, "is a TorchScript archive (torch.jit.save), not a state dict saved with torch.save. " + ConversionHint);
        throw new CheckpointFormatException(path, "is a zip archive without a <name>/data.pkl record, so not a torch.save checkpoint");
    }

    static bool ReadByteOrder(string path, Dictionary<string, ZipArchiveEntry> entries, string prefix, long fileLength)
    {
        if (!entries.TryGetValue(prefix + "byteorder", out var entry)) return false;
        var text = Encoding.ASCII.GetString(ReadEntryBytes(path, entry, 16, fileLength)).Trim();
        return text switch
        {
            "little" => false,
            "big" => true,
            _ => throw new CheckpointFormatException(path, $"byteorder record says '{text}', not 'little' or 'big'"),
        };
    }

    /// <summary>Reads a whole small entry, refusing one that claims (or turns out) to be longer than <paramref name="limit"/>.</summary>
    static byte[] ReadEntryBytes(string path, ZipArchiveEntry entry, long limit, long fileLength)
    {
        CheckPlausibleSize(path, entry, fileLength);
        if (entry.Length > limit)
            throw new CheckpointFormatException(path, $"zip entry '{entry.FullName}' is {entry.Length} bytes; more than the {limit}-byte limit");
        return Zip(path, () =>
        {
            var bytes = new byte[entry.Length];
            using var stream = entry.Open();
            stream.ReadExactly(bytes);
            return bytes;
        });
    }

    static void CheckPlausibleSize(string path, ZipArchiveEntry entry, long fileLength)
    {
        if (entry.CompressedLength > fileLength || entry.Length > entry.CompressedLength * MaxDeflateRatio + 1024)
            throw new CheckpointFormatException(path,
                $"zip entry '{entry.FullName}' claims {entry.Length} bytes from {entry.CompressedLength} compressed bytes in a {fileLength}-byte file");
    }

    static TorchStorage LocateStorage(string path, Dictionary<string, ZipArchiveEntry> entries, string prefix, string key,
        TorchElementType type, long count, long fileLength)
    {
        var name = prefix + "data/" + key;
        if (!entries.TryGetValue(name, out var entry))
            throw new CheckpointFormatException(path, $"the pickle references storage '{key}', but the archive has no entry {name}");
        CheckPlausibleSize(path, entry, fileLength);
        if (count > entry.Length / type.Size)
            throw new CheckpointFormatException(path,
                $"storage '{key}' should hold {count} × {type.StorageName} but its entry {name} has only {entry.Length} bytes");
        return new TorchStorage(key, name, type, count);
    }

    static Dictionary<string, TorchTensorRef> ToStateDict(string path, object? root)
    {
        if (root is not PickleDict dict)
            throw new CheckpointFormatException(path, "holds a pickled object that is not a state dict (a dict of name → tensor)");
        var tensors = new Dictionary<string, TorchTensorRef>(StringComparer.Ordinal);
        foreach (var (key, value) in dict.Items)
        {
            if (key is not string name)
                throw new CheckpointFormatException(path, "the state dict has a key that is not a string");
            if (value is not TorchTensorRef tensor)
                throw new CheckpointFormatException(path,
                    $"the state dict holds something other than a tensor under '{name}'; only a flat name → tensor dict (model.state_dict()) can be read");
            if (!tensors.TryAdd(name, tensor))
                throw new CheckpointFormatException(path, $"the state dict holds '{name}' twice");
        }
        return tensors;
    }

    static void Skip(Stream stream, long bytes)
    {
        if (bytes == 0) return;
        if (stream.CanSeek)
        {
            stream.Seek(bytes, SeekOrigin.Current);
            return;
        }
        var scratch = new byte[(int)Math.Min(bytes, 1 << 16)];
        while (bytes > 0)
        {
            int n = (int)Math.Min(bytes, scratch.Length);
            stream.ReadExactly(scratch, 0, n);
            bytes -= n;
        }
    }

    /// <summary>Runs a zip operation, turning the zip library's errors about a damaged archive into ours.</summary>
    static T Zip<T>(string path, Func<T> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or NotSupportedException)
        {
            throw new CheckpointFormatException(path, $"the zip archive is damaged ({e.Message})");
        }
    }
}
