using System.Buffers.Binary;
using System.Text;

namespace Microsoft.ML.LoRA.Export;

/// <summary>
/// The protobuf wire format, as much of it as an ONNX file needs: varints, 32-bit floats and length-delimited fields
/// (strings, bytes, packed numbers, nested messages). A message is written into its own buffer and then embedded
/// with its length, so the writer never needs a message's size in advance.
/// </summary>
/// <remarks>
/// Hand-written rather than generated from onnx.proto: the exporter writes a few message types and reads none, so
/// a code generator (Grpc.Tools' native protoc at build time) and a runtime dependency (Google.Protobuf) would buy
/// nothing the 100 lines here do not, and the scorer, which reads ONNX through ONNX Runtime, needs neither.
/// </remarks>
internal sealed class ProtoWriter
{
    const int Varint = 0, Fixed32 = 5, LengthDelimited = 2;

    readonly MemoryStream _buffer = new();

    /// <summary>Bytes written so far.</summary>
    public long Length => _buffer.Length;

    public byte[] ToArray() => _buffer.ToArray();

    public void WriteTo(Stream stream) => _buffer.WriteTo(stream);

    public ProtoWriter Int64(int field, long value)
    {
        Tag(field, Varint);
        RawVarint((ulong)value);
        return this;
    }

    public ProtoWriter Float(int field, float value)
    {
        Tag(field, Fixed32);
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteSingleLittleEndian(bytes, value);
        _buffer.Write(bytes);
        return this;
    }

    public ProtoWriter String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

    public ProtoWriter Bytes(int field, ReadOnlySpan<byte> value)
    {
        Tag(field, LengthDelimited);
        RawVarint((ulong)value.Length);
        _buffer.Write(value);
        return this;
    }

    public ProtoWriter Message(int field, ProtoWriter message)
    {
        Tag(field, LengthDelimited);
        RawVarint((ulong)message.Length);
        message.WriteTo(_buffer);
        return this;
    }

    public ProtoWriter Message(int field, Action<ProtoWriter> write)
    {
        var message = new ProtoWriter();
        write(message);
        return Message(field, message);
    }

    /// <summary>A repeated int64 field, packed (proto3's default for repeated scalars).</summary>
    public ProtoWriter PackedInt64(int field, IEnumerable<long> values)
    {
        var packed = new ProtoWriter();
        foreach (var v in values) packed.RawVarint((ulong)v);
        return Message(field, packed);
    }

    /// <summary>A repeated float field, packed.</summary>
    public ProtoWriter PackedFloat(int field, IReadOnlyList<float> values)
    {
        var bytes = new byte[values.Count * 4];
        for (int i = 0; i < values.Count; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        return Bytes(field, bytes);
    }

    void Tag(int field, int wireType) => RawVarint((ulong)((field << 3) | wireType));

    /// <summary>The bytes a varint of <paramref name="value"/> takes.</summary>
    public static int VarintSize(ulong value)
    {
        int size = 1;
        while (value >= 0x80) { value >>= 7; size++; }
        return size;
    }

    /// <summary>The bytes a length-delimited field of <paramref name="length"/> content bytes takes, tag and length included.</summary>
    public static long FieldSize(int field, long length) => VarintSize((ulong)(field << 3)) + VarintSize((ulong)length) + length;

    /// <summary>
    /// Writes the tag and length of a length-delimited field straight to <paramref name="stream"/>; the caller writes
    /// its <paramref name="length"/> content bytes next (so large payloads are never copied into a buffer).
    /// </summary>
    public static void WriteFieldHeader(Stream stream, int field, long length)
    {
        var header = new ProtoWriter();
        header.Tag(field, LengthDelimited);
        header.RawVarint((ulong)length);
        header.WriteTo(stream);
    }

    void RawVarint(ulong value)
    {
        while (value >= 0x80)
        {
            _buffer.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }
        _buffer.WriteByte((byte)value);
    }
}
