using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Checkpoints;

/// <summary>
/// Moves raw element bytes between streams and tensor memory in bounded chunks, so a tensor of any size is read
/// without a managed copy of it (a <see cref="Span{T}"/> over a tensor cannot exceed 2 GB).
/// </summary>
internal static class TensorBytes
{
    /// <summary>Default chunk: 16 MB.</summary>
    public const int DefaultChunkBytes = 1 << 24;

    /// <summary>
    /// Fills a contiguous CPU tensor with <c>numel × element size</c> bytes read from <paramref name="stream"/>.
    /// Throws <see cref="EndOfStreamException"/> when the stream ends first.
    /// </summary>
    public static void ReadInto(Stream stream, Tensor tensor, int chunkBytes = DefaultChunkBytes)
    {
        long count = tensor.numel();
        if (count == 0) return;
        if (!tensor.is_contiguous()) throw new ArgumentException("the tensor must be contiguous", nameof(tensor));
        long elementSize = tensor.element_size();
        long chunkElements = Math.Max(1, chunkBytes / elementSize);
        using var flat = tensor.view(-1);
        for (long start = 0; start < count; start += chunkElements)
        {
            using var part = flat.narrow(0, start, Math.Min(chunkElements, count - start));
            stream.ReadExactly(part.bytes);
        }
    }

    /// <summary>Reverses the byte order of every element of a contiguous CPU tensor in place (big-endian files).</summary>
    public static void SwapByteOrder(Tensor tensor, int chunkBytes = DefaultChunkBytes)
    {
        int elementSize = (int)tensor.element_size();
        long count = tensor.numel();
        if (elementSize == 1 || count == 0) return;
        long chunkElements = Math.Max(1, chunkBytes / elementSize);
        using var flat = tensor.view(-1);
        for (long start = 0; start < count; start += chunkElements)
        {
            using var part = flat.narrow(0, start, Math.Min(chunkElements, count - start));
            var bytes = part.bytes;
            for (int i = 0; i < bytes.Length; i += elementSize) bytes.Slice(i, elementSize).Reverse();
        }
    }
}
