using System.Security.Cryptography;

namespace Microsoft.ML.LoRA.Persistence;

/// <summary>A write-only stream that passes bytes on to another and counts and SHA-256-hashes them on the way.</summary>
internal sealed class HashingWriteStream(Stream inner) : Stream
{
    readonly IncrementalHash _sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    /// <summary>Bytes written so far.</summary>
    public long Count { get; private set; }

    /// <summary>The SHA-256 of the bytes written, lower-case hex (once: it resets the hash).</summary>
    public string Sha256() => Convert.ToHexStringLower(_sha.GetHashAndReset());

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => Count; set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _sha.AppendData(buffer);
        Count += buffer.Length;
        inner.Write(buffer);
    }

    public override void WriteByte(byte value) => Write(new[] { value });

    public override void Flush() => inner.Flush();
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) _sha.Dispose();
        base.Dispose(disposing);
    }
}
