using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Checkpoints;

/// <summary>Element types a safetensors file may hold that this library reads.</summary>
public enum SafeTensorsDType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, Bool }

/// <summary>One tensor's entry in a safetensors header: its name, element type, shape and byte range.</summary>
public sealed record SafeTensorsEntry(string Name, SafeTensorsDType DType, long[] Shape, long Begin, long End)
{
    /// <summary>Number of elements (product of the shape; 1 for a scalar).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// Reads a <c>.safetensors</c> file: an 8-byte little-endian header length, a JSON header naming each tensor's
/// dtype, shape and byte range, then the raw data. Every field of the header is checked before any tensor is
/// allocated, so a truncated or hostile file fails with a <see cref="CheckpointFormatException"/> that says what is
/// wrong instead of crashing or allocating without bound.
/// </summary>
public sealed class SafeTensorsFile
{
    /// <summary>Largest header accepted (the format's own limit is 100 MB).</summary>
    public const long MaxHeaderBytes = 100L * 1024 * 1024;

    readonly Dictionary<string, SafeTensorsEntry> _entries;

    /// <summary>The stream the data is read from, when the file was opened from one (null: the file at <see cref="Path"/>).</summary>
    readonly Stream? _stream;

    /// <summary>Where the file starts in <see cref="_stream"/>, or, for a forward-only stream, how far it has been read.</summary>
    long _streamAt;

    /// <summary>Path of the file (for a file opened from a stream, the name it was given, as messages say it).</summary>
    public string Path { get; }

    /// <summary>Offset in the file where the data section starts.</summary>
    public long DataOffset { get; }

    /// <summary>The tensors, in header order.</summary>
    public IReadOnlyList<SafeTensorsEntry> Entries { get; }

    /// <summary>The optional <c>__metadata__</c> string map.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    SafeTensorsFile(string path, long dataOffset, List<SafeTensorsEntry> entries, Dictionary<string, string> metadata, Stream? stream, long streamAt)
    {
        Path = path;
        DataOffset = dataOffset;
        Entries = entries;
        Metadata = metadata;
        _entries = entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
        _stream = stream;
        _streamAt = streamAt;
    }

    /// <summary>Opens and validates the header of a safetensors file. Tensor data is read on demand.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CheckpointFormatException">The file is not a well-formed safetensors file.</exception>
    public static SafeTensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Safetensors file not found: {path}", path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return ReadHeader(path, stream, stream.Length, keep: false);
    }

    /// <summary>
    /// Reads and validates the header of the safetensors file of <paramref name="length"/> bytes that
    /// <paramref name="stream"/> holds from its current position (an entry of an archive, a file in memory); its tensors
    /// are then read from the stream, which the caller keeps open while they are and disposes after. From a seekable
    /// stream tensors are read in any order; from a forward-only one, in the order they are stored
    /// (<see cref="SafeTensorsEntry.Begin"/>), the bytes between them skipped. Not for several threads at once.
    /// </summary>
    /// <param name="stream">The file's bytes, from its first.</param>
    /// <param name="name">What the file is, as messages name it.</param>
    /// <param name="length">The file's length in bytes.</param>
    /// <exception cref="CheckpointFormatException">The file is not a well-formed safetensors file.</exception>
    public static SafeTensorsFile Open(Stream stream, string name, long length)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return ReadHeader(name, stream, length, keep: true);
    }

    static SafeTensorsFile ReadHeader(string path, Stream stream, long length, bool keep)
    {
        long origin = stream.CanSeek ? stream.Position : 0;
        if (length < 8)
            throw new CheckpointFormatException(path, $"file is {length} bytes long; a safetensors file starts with an 8-byte header length");
        Span<byte> prefix = stackalloc byte[8];
        ReadExactly(path, stream, prefix);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > MaxHeaderBytes)
            throw new CheckpointFormatException(path, $"header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit of the safetensors format");
        if ((long)headerLength > length - 8)
            throw new CheckpointFormatException(path, $"header length {headerLength} runs past the end of the file ({length} bytes, so at most {length - 8} header bytes)");
        var header = new byte[headerLength];
        ReadExactly(path, stream, header);
        long dataOffset = 8 + (long)headerLength;
        var (entries, metadata) = ParseHeader(path, header, length - dataOffset);
        return new SafeTensorsFile(path, dataOffset, entries, metadata, keep ? stream : null, stream.CanSeek ? origin : dataOffset);
    }

    static void ReadExactly(string path, Stream stream, Span<byte> buffer)
    {
        try { stream.ReadExactly(buffer); }
        catch (EndOfStreamException) { throw new CheckpointFormatException(path, "the file ended inside its header"); }
    }

    /// <summary>True if the file holds a tensor with this name.</summary>
    public bool Contains(string name) => _entries.ContainsKey(name);

    /// <summary>The entry of a tensor, or throws naming the missing tensor.</summary>
    public SafeTensorsEntry this[string name] =>
        _entries.TryGetValue(name, out var e) ? e : throw new KeyNotFoundException($"tensor '{name}' is not in {Path}");

    /// <summary>Reads one tensor as float32 on the CPU (F16 and BF16 are widened; integer types are converted).</summary>
    public Tensor ReadFloat32(string name)
    {
        var raw = ReadRaw(name);
        if (raw.dtype == ScalarType.Float32) return raw;
        using (raw) return raw.to_type(ScalarType.Float32);
    }

    /// <summary>Reads one tensor in its stored element type.</summary>
    public Tensor ReadRaw(string name)
    {
        var entry = this[name];
        if (_stream is not null) return ReadRaw(entry, ToEntry(_stream, entry));
        using var stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        if (stream.Length < DataOffset + entry.End)
            throw new CheckpointFormatException(Path, $"tensor '{name}' ends at byte {DataOffset + entry.End} but the file is now {stream.Length} bytes long (was it changed after it was opened?)");
        stream.Seek(DataOffset + entry.Begin, SeekOrigin.Begin);
        return ReadRaw(entry, stream);
    }

    /// <summary><paramref name="stream"/>, at the start of <paramref name="entry"/>'s bytes.</summary>
    Stream ToEntry(Stream stream, SafeTensorsEntry entry)
    {
        long at = DataOffset + entry.Begin;
        if (stream.CanSeek)
        {
            stream.Seek(_streamAt + at, SeekOrigin.Begin);
            return stream;
        }
        if (at < _streamAt)
            throw new InvalidOperationException($"{Path} is read from a forward-only stream, which is past tensor '{entry.Name}': read the tensors in the order they are stored");
        var skip = new byte[Math.Min(at - _streamAt, 1 << 16)];
        while (_streamAt < at)
        {
            int n = stream.Read(skip, 0, (int)Math.Min(skip.Length, at - _streamAt));
            if (n == 0) throw new CheckpointFormatException(Path, $"the file ended before tensor '{entry.Name}'");
            _streamAt += n;
        }
        _streamAt = DataOffset + entry.End;   // where the stream will be once the tensor is read
        return stream;
    }

    Tensor ReadRaw(SafeTensorsEntry entry, Stream stream)
    {
        // BOOL is read as bytes and compared with zero: a byte other than 0 or 1 is not a valid C++ bool.
        var tensor = torch.empty(entry.Shape, entry.DType == SafeTensorsDType.Bool ? ScalarType.Byte : ToScalarType(entry.DType));
        try
        {
            TensorBytes.ReadInto(stream, tensor);
        }
        catch (EndOfStreamException)
        {
            tensor.Dispose();
            throw new CheckpointFormatException(Path, $"the file ended while reading tensor '{entry.Name}'");
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
        if (entry.DType != SafeTensorsDType.Bool) return tensor;
        using (tensor) return tensor.ne(Scalars.Zero);
    }

    /// <summary>Reads every tensor as float32. The caller owns (and disposes) the tensors.</summary>
    public Dictionary<string, Tensor> ReadAllFloat32()
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var e in Entries) result[e.Name] = ReadFloat32(e.Name);
            return result;
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
    }

    /// <summary>Bytes per element of a dtype.</summary>
    public static int ElementSize(SafeTensorsDType dtype) => dtype switch
    {
        SafeTensorsDType.F64 or SafeTensorsDType.I64 => 8,
        SafeTensorsDType.F32 or SafeTensorsDType.I32 => 4,
        SafeTensorsDType.F16 or SafeTensorsDType.BF16 or SafeTensorsDType.I16 => 2,
        _ => 1,
    };

    internal static ScalarType ToScalarType(SafeTensorsDType dtype) => dtype switch
    {
        SafeTensorsDType.F32 => ScalarType.Float32,
        SafeTensorsDType.F16 => ScalarType.Float16,
        SafeTensorsDType.BF16 => ScalarType.BFloat16,
        SafeTensorsDType.F64 => ScalarType.Float64,
        SafeTensorsDType.I64 => ScalarType.Int64,
        SafeTensorsDType.I32 => ScalarType.Int32,
        SafeTensorsDType.I16 => ScalarType.Int16,
        SafeTensorsDType.I8 => ScalarType.Int8,
        SafeTensorsDType.U8 => ScalarType.Byte,
        SafeTensorsDType.Bool => ScalarType.Bool,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };

    internal static bool TryParseDType(string text, out SafeTensorsDType dtype)
    {
        switch (text)
        {
            case "F32": dtype = SafeTensorsDType.F32; return true;
            case "F16": dtype = SafeTensorsDType.F16; return true;
            case "BF16": dtype = SafeTensorsDType.BF16; return true;
            case "F64": dtype = SafeTensorsDType.F64; return true;
            case "I64": dtype = SafeTensorsDType.I64; return true;
            case "I32": dtype = SafeTensorsDType.I32; return true;
            case "I16": dtype = SafeTensorsDType.I16; return true;
            case "I8": dtype = SafeTensorsDType.I8; return true;
            case "U8": dtype = SafeTensorsDType.U8; return true;
            case "BOOL": dtype = SafeTensorsDType.Bool; return true;
            default: dtype = default; return false;
        }
    }

    /// <summary>Deepest JSON nesting a header needs: object → tensor entry → shape / data_offsets array.</summary>
    const int MaxHeaderDepth = 3;

    static (List<SafeTensorsEntry>, Dictionary<string, string>) ParseHeader(string path, byte[] header, long dataLength)
    {
        CheckJsonSyntax(path, header);
        using var doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = MaxHeaderDepth + 1 });
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new CheckpointFormatException(path, $"header is a JSON {doc.RootElement.ValueKind.ToString().ToLowerInvariant()}, not an object");
        var entries = new List<SafeTensorsEntry>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in doc.RootElement.EnumerateObject())
        {
            if (!seen.Add(property.Name))
                throw new CheckpointFormatException(path, $"'{property.Name}' appears twice in the header");
            if (property.Name == "__metadata__")
            {
                if (property.Value.ValueKind != JsonValueKind.Object)
                    throw new CheckpointFormatException(path, $"__metadata__ is a JSON {property.Value.ValueKind.ToString().ToLowerInvariant()}; it must be an object of strings");
                foreach (var m in property.Value.EnumerateObject())
                {
                    if (m.Value.ValueKind != JsonValueKind.String)
                        throw new CheckpointFormatException(path, $"__metadata__ value '{m.Name}' is a JSON {m.Value.ValueKind.ToString().ToLowerInvariant()}; it must be a string");
                    if (!metadata.TryAdd(m.Name, m.Value.GetString()!))
                        throw new CheckpointFormatException(path, $"__metadata__ key '{m.Name}' appears twice");
                }
                continue;
            }
            entries.Add(ParseEntry(path, property.Name, property.Value, dataLength));
        }
        CheckNoOverlap(path, entries);
        return (entries, metadata);
    }

    /// <summary>Checks the header is UTF-8 JSON no deeper than <see cref="MaxHeaderDepth"/>, with a specific message for each.</summary>
    static void CheckJsonSyntax(string path, byte[] header)
    {
        try
        {
            new UTF8Encoding(false, true).GetCharCount(header);
        }
        catch (DecoderFallbackException e)
        {
            throw new CheckpointFormatException(path, $"header is not valid UTF-8 (bad byte at header offset {e.Index})");
        }
        try
        {
            var reader = new Utf8JsonReader(header, new JsonReaderOptions { MaxDepth = MaxHeaderDepth + 2 });
            while (reader.Read())
            {
                if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray && reader.CurrentDepth >= MaxHeaderDepth)
                    throw new CheckpointFormatException(path,
                        $"header nests JSON deeper than {MaxHeaderDepth} levels (byte {reader.TokenStartIndex}); a safetensors header is an object of tensor entries holding arrays");
            }
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(path, $"header is not valid JSON ({e.Message})");
        }
    }

    static SafeTensorsEntry ParseEntry(string path, string name, JsonElement value, long dataLength)
    {
        CheckpointFormatException Bad(string what) => new(path, $"tensor '{name}': {what}");
        if (value.ValueKind != JsonValueKind.Object) throw Bad($"entry is a JSON {value.ValueKind.ToString().ToLowerInvariant()}, not an object");
        if (!value.TryGetProperty("dtype", out var dtypeElement)) throw Bad("has no dtype");
        if (dtypeElement.ValueKind != JsonValueKind.String) throw Bad($"dtype is {dtypeElement.GetRawText()}, not a string");
        var dtypeText = dtypeElement.GetString()!;
        if (!TryParseDType(dtypeText, out var dtype))
            throw Bad($"unknown dtype '{dtypeText}' (supported: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)");

        if (!value.TryGetProperty("shape", out var shapeElement)) throw Bad("has no shape");
        if (shapeElement.ValueKind != JsonValueKind.Array) throw Bad($"shape is {shapeElement.GetRawText()}, not an array");
        if (shapeElement.GetArrayLength() > MaxDimensions) throw Bad($"shape has {shapeElement.GetArrayLength()} dimensions (at most {MaxDimensions})");
        var shape = new long[shapeElement.GetArrayLength()];
        long elements = 1;
        bool overflow = false;
        int i = 0;
        foreach (var d in shapeElement.EnumerateArray())
        {
            long dim = ReadInteger(d, out var problem);
            if (problem != null) throw Bad($"shape[{i}] {problem}");
            if (dim < 0) throw Bad($"shape[{i}] is {dim}; dimensions cannot be negative");
            shape[i++] = dim;
            if (dim != 0 && elements > long.MaxValue / dim) overflow = true;
            else elements *= dim;
        }
        if (shape.Contains(0)) { elements = 0; overflow = false; }
        string shapeText = $"[{string.Join(", ", shape)}]";
        int size = ElementSize(dtype);
        if (overflow || elements > long.MaxValue / size)
            throw Bad($"shape {shapeText} holds more elements than a 64-bit byte count can address");

        if (!value.TryGetProperty("data_offsets", out var offsets)) throw Bad("has no data_offsets");
        if (offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw Bad($"data_offsets is {Shorten(offsets.GetRawText())}, not an array [begin, end]");
        long begin = ReadInteger(offsets[0], out var beginProblem);
        if (beginProblem != null) throw Bad($"data_offsets begin {beginProblem}");
        long end = ReadInteger(offsets[1], out var endProblem);
        if (endProblem != null) throw Bad($"data_offsets end {endProblem}");
        if (begin < 0 || end < 0) throw Bad($"data_offsets [{begin}, {end}] are negative");
        if (end < begin) throw Bad($"data_offsets [{begin}, {end}] are reversed (end before begin)");
        if (end > dataLength)
            throw Bad($"data_offsets [{begin}, {end}] run past the end of the data section ({dataLength} bytes)");
        if (elements * size != end - begin)
            throw Bad($"shape {shapeText} of {dtypeText} needs {elements * size} bytes but data_offsets [{begin}, {end}] hold {end - begin}");
        return new SafeTensorsEntry(name, dtype, shape, begin, end);
    }

    /// <summary>Most dimensions a tensor may have.</summary>
    const int MaxDimensions = 16;

    /// <summary>A JSON integer that fits in 64 bits, or a description of why the value is not one.</summary>
    static long ReadInteger(JsonElement element, out string? problem)
    {
        problem = null;
        if (element.ValueKind != JsonValueKind.Number)
        {
            problem = $"is {Shorten(element.GetRawText())}, not an integer";
            return 0;
        }
        if (element.TryGetInt64(out var value)) return value;
        var raw = element.GetRawText();
        bool integerLiteral = raw.AsSpan().IndexOfAny('.', 'e', 'E') < 0;
        problem = integerLiteral ? $"is {Shorten(raw)}, too large for a 64-bit integer" : $"is {Shorten(raw)}, not an integer";
        return 0;
    }

    static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "...";

    static void CheckNoOverlap(string path, List<SafeTensorsEntry> entries)
    {
        SafeTensorsEntry? previous = null;
        foreach (var e in entries.Where(e => e.End > e.Begin).OrderBy(e => e.Begin))
        {
            if (previous != null && e.Begin < previous.End)
                throw new CheckpointFormatException(path,
                    $"tensors '{previous.Name}' (bytes {previous.Begin}-{previous.End}) and '{e.Name}' (bytes {e.Begin}-{e.End}) overlap in the data section");
            previous = e;
        }
    }
}
