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

    /// <summary>Path of the file.</summary>
    public string Path { get; }

    /// <summary>Offset in the file where the data section starts.</summary>
    public long DataOffset { get; }

    /// <summary>The tensors, in header order.</summary>
    public IReadOnlyList<SafeTensorsEntry> Entries { get; }

    /// <summary>The optional <c>__metadata__</c> string map.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    SafeTensorsFile(string path, long dataOffset, List<SafeTensorsEntry> entries, Dictionary<string, string> metadata)
    {
        Path = path;
        DataOffset = dataOffset;
        Entries = entries;
        Metadata = metadata;
        _entries = entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
    }

    /// <summary>Opens and validates the header of a safetensors file. Tensor data is read on demand.</summary>
    public static SafeTensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Safetensors file not found: {path}", path);
        using var stream = File.OpenRead(path);
        long length = stream.Length;
        if (length < 8)
            throw new CheckpointFormatException(path, $"file is {length} bytes long; a safetensors file starts with an 8-byte header length");
        Span<byte> prefix = stackalloc byte[8];
        stream.ReadExactly(prefix);
        ulong headerLength = BitConverter.ToUInt64(prefix);
        if (headerLength > MaxHeaderBytes)
            throw new CheckpointFormatException(path, $"header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit");
        if ((long)headerLength > length - 8)
            throw new CheckpointFormatException(path, $"header length {headerLength} runs past the end of the file ({length} bytes)");
        var header = new byte[headerLength];
        stream.ReadExactly(header);
        long dataOffset = 8 + (long)headerLength;
        var (entries, metadata) = ParseHeader(path, header, length - dataOffset);
        return new SafeTensorsFile(path, dataOffset, entries, metadata);
    }

    /// <summary>True if the file holds a tensor with this name.</summary>
    public bool Contains(string name) => _entries.ContainsKey(name);

    /// <summary>The entry of a tensor, or throws naming the missing tensor.</summary>
    public SafeTensorsEntry this[string name] =>
        _entries.TryGetValue(name, out var e) ? e : throw new KeyNotFoundException($"tensor '{name}' is not in {Path}");

    /// <summary>Reads one tensor as float32 on the CPU (F16 and BF16 are widened; integer types are converted).</summary>
    public Tensor ReadFloat32(string name)
    {
        using var raw = ReadRaw(name);
        return raw.dtype == ScalarType.Float32 ? raw.alias() : raw.to_type(ScalarType.Float32);
    }

    /// <summary>Reads one tensor in its stored element type.</summary>
    public Tensor ReadRaw(string name)
    {
        var entry = this[name];
        var tensor = torch.empty(entry.Shape, ToScalarType(entry.DType));
        try
        {
            using var stream = File.OpenRead(Path);
            if (stream.Length < DataOffset + entry.End)
                throw new CheckpointFormatException(Path, $"file shrank while reading tensor '{name}'");
            stream.Seek(DataOffset + entry.Begin, SeekOrigin.Begin);
            if (entry.End > entry.Begin) stream.ReadExactly(tensor.bytes);
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
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

    static (List<SafeTensorsEntry>, Dictionary<string, string>) ParseHeader(string path, byte[] header, long dataLength)
    {
        JsonDocument doc;
        try
        {
            var text = new UTF8Encoding(false, true).GetString(header);
            doc = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (Exception e) when (e is JsonException or DecoderFallbackException or ArgumentException)
        {
            throw new CheckpointFormatException(path, $"header is not valid UTF-8 JSON ({e.Message})");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new CheckpointFormatException(path, "header is not a JSON object");
            var entries = new List<SafeTensorsEntry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw new CheckpointFormatException(path, $"tensor '{property.Name}' appears twice in the header");
                if (property.Name == "__metadata__")
                {
                    if (property.Value.ValueKind != JsonValueKind.Object)
                        throw new CheckpointFormatException(path, "__metadata__ is not an object of strings");
                    foreach (var m in property.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String)
                            throw new CheckpointFormatException(path, $"__metadata__ value '{m.Name}' is not a string");
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                entries.Add(ParseEntry(path, property.Name, property.Value, dataLength));
            }
            CheckNoOverlap(path, entries);
            return (entries, metadata);
        }
    }

    static SafeTensorsEntry ParseEntry(string path, string name, JsonElement value, long dataLength)
    {
        string Where(string what) => $"tensor '{name}': {what}";
        if (value.ValueKind != JsonValueKind.Object) throw new CheckpointFormatException(path, Where("entry is not an object"));
        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new CheckpointFormatException(path, Where("missing dtype"));
        var dtypeText = dtypeElement.GetString()!;
        if (!TryParseDType(dtypeText, out var dtype))
            throw new CheckpointFormatException(path, Where($"unknown dtype '{dtypeText}' (supported: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)"));
        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw new CheckpointFormatException(path, Where("missing shape"));
        var shape = new List<long>();
        long elements = 1;
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var dim) || dim < 0)
                throw new CheckpointFormatException(path, Where("shape holds a value that is not a non-negative integer"));
            if (shape.Count >= 16) throw new CheckpointFormatException(path, Where("shape has more than 16 dimensions"));
            shape.Add(dim);
            if (dim != 0 && elements > long.MaxValue / dim)
                throw new CheckpointFormatException(path, Where("shape's element count overflows"));
            elements *= dim;
        }
        if (!value.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw new CheckpointFormatException(path, Where("data_offsets must be an array [begin, end]"));
        if (!offsets[0].TryGetInt64(out var begin) || !offsets[1].TryGetInt64(out var end) || begin < 0 || end < begin)
            throw new CheckpointFormatException(path, Where("data_offsets must be non-negative integers with begin <= end"));
        if (end > dataLength)
            throw new CheckpointFormatException(path, Where($"data_offsets [{begin}, {end}] run past the end of the data ({dataLength} bytes)"));
        int size = ElementSize(dtype);
        if (elements > long.MaxValue / size || elements * size != end - begin)
            throw new CheckpointFormatException(path, Where($"shape [{string.Join(", ", shape)}] of {dtypeText} needs {(elements > long.MaxValue / size ? "too many" : (elements * size).ToString())} bytes but data_offsets give {end - begin}"));
        return new SafeTensorsEntry(name, dtype, shape.ToArray(), begin, end);
    }

    static void CheckNoOverlap(string path, List<SafeTensorsEntry> entries)
    {
        SafeTensorsEntry? previous = null;
        foreach (var e in entries.Where(e => e.End > e.Begin).OrderBy(e => e.Begin))
        {
            if (previous != null && e.Begin < previous.End)
                throw new CheckpointFormatException(path, $"tensors '{previous.Name}' and '{e.Name}' overlap in the data section");
            previous = e;
        }
    }
}
