using Microsoft.ML.LoRA.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tests.Checkpoints;

/// <summary>Reading tensor bytes in chunks (how tensors over 2 GB are read) puts every byte in its place.</summary>
public sealed class TensorBytesTests
{
    static byte[] LittleEndianFloats(float[] values) => values.SelectMany(BitConverter.GetBytes).ToArray();

    [Theory]
    [InlineData(1)]
    [InlineData(12)]
    [InlineData(13)]
    [InlineData(1 << 24)]
    public void Chunked_reads_fill_the_tensor_in_order(int chunkBytes)
    {
        var values = Enumerable.Range(0, 10).Select(i => i * 1.5f - 4).ToArray();
        using var tensor = torch.empty(2, 5);

        TensorBytes.ReadInto(new MemoryStream(LittleEndianFloats(values)), tensor, chunkBytes);

        tensor.data<float>().ToArray().Should().Equal(values);
    }

    [Fact]
    public void A_stream_that_ends_early_throws_EndOfStreamException()
    {
        using var tensor = torch.empty(4);

        FluentActions.Invoking(() => TensorBytes.ReadInto(new MemoryStream(new byte[15]), tensor, 4)).Should().Throw<EndOfStreamException>();
    }

    [Theory]
    [InlineData(2)]
    [InlineData(8)]
    [InlineData(1 << 24)]
    public void Swapping_byte_order_reverses_each_element(int chunkBytes)
    {
        using var tensor = torch.tensor(new long[] { 1, 0x0102030405060708, -2 });

        TensorBytes.SwapByteOrder(tensor, chunkBytes);

        tensor.data<long>().ToArray().Should().Equal(0x0100000000000000, 0x0807060504030201, unchecked((long)0xfeffffffffffffff));
    }
}
