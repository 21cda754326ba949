using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tests.Checkpoints;

/// <summary>What <see cref="SafeTensorsWriter"/> writes, <see cref="SafeTensorsFile"/> reads back unchanged.</summary>
public sealed class SafeTensorsRoundTripTests : IDisposable
{
    readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Writer_and_reader_round_trip_names_shapes_values_and_metadata()
    {
        using var scope = torch.NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>
        {
            ["encoder.weight"] = torch.linspace(-2, 2, 12).reshape(3, 4),
            ["encoder.bias"] = torch.tensor(new[] { -1.5f, 0f, 2.25f }),
            ["double"] = torch.tensor(new[] { Math.PI, -1e300 }),
            ["ids"] = torch.tensor(new[] { long.MinValue, 0L, long.MaxValue }),
            ["int32"] = torch.tensor(new[] { int.MinValue, 7 }),
            ["int16"] = torch.tensor(new short[] { -300, 300 }),
            ["int8"] = torch.tensor(new sbyte[] { -128, 127 }),
            ["uint8"] = torch.tensor(new byte[] { 0, 255 }),
            ["mask"] = torch.tensor(new[] { true, false, true }),
            ["scalar"] = torch.tensor(3.5f),
            ["empty"] = torch.zeros(0, 5),
            ["transposed"] = torch.arange(6, dtype: ScalarType.Float32).reshape(2, 3).t(),
        };
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode ✓" };
        var path = _dir.File("model.safetensors");

        SafeTensorsWriter.Save(path, tensors, metadata);
        var file = SafeTensorsFile.Open(path);

        file.Metadata.Should().Equal(metadata);
        file.Entries.Select(e => e.Name).Should().BeEquivalentTo(tensors.Keys);
        foreach (var (name, expected) in tensors)
        {
            file[name].Shape.Should().Equal(expected.shape, name);
            using var actual = file.ReadRaw(name);
            TensorAssert.Identical(actual, expected, name);
        }
    }

    [Fact]
    public void Tensors_are_written_in_name_order_with_an_8_byte_aligned_header()
    {
        using var scope = torch.NewDisposeScope();
        var path = _dir.File("ordered.safetensors");

        SafeTensorsWriter.Save(path, new Dictionary<string, Tensor> { ["b"] = torch.ones(2), ["a"] = torch.zeros(3) });
        var file = SafeTensorsFile.Open(path);

        file.Entries.Select(e => e.Name).Should().Equal("a", "b");
        (file.DataOffset % 8).Should().Be(0, "the header is padded to a multiple of 8 bytes");
        file["a"].Begin.Should().Be(0);
        file["b"].Begin.Should().Be(12);
    }

    [Fact]
    public void F16_tensors_are_read_back_as_float32()
    {
        // Values exactly representable in half precision, including its largest and smallest (subnormal) magnitudes.
        var values = new[] { 0f, 1.5f, -2.25f, 65504f, -65504f, 5.9604645e-8f, 0.099975586f };
        ReadBackAsFloat32(ScalarType.Float16, values).Should().Equal(values);
    }

    [Fact]
    public void BF16_tensors_are_read_back_as_float32()
    {
        // Values exactly representable in bfloat16: 8 bits of mantissa, float32's exponent range.
        var values = new[] { 0f, 1.5f, -2.25f, 3.3895314e38f, -1.1754944e-38f, 0.099609375f, 1024f };
        ReadBackAsFloat32(ScalarType.BFloat16, values).Should().Equal(values);
    }

    [Fact]
    public void F16_values_are_rounded_as_the_half_tensor_holds_them()
    {
        var values = new[] { 0.1f, 1f / 3, 12345.678f };
        using var half = torch.tensor(values).to_type(ScalarType.Float16);
        using var widened = half.to_type(ScalarType.Float32);

        ReadBackAsFloat32(ScalarType.Float16, values).Should().Equal(widened.data<float>().ToArray());
    }

    float[] ReadBackAsFloat32(ScalarType type, float[] values)
    {
        var path = _dir.File($"{type}.safetensors");
        using (var source = torch.tensor(values).to_type(type))
            SafeTensorsWriter.Save(path, new Dictionary<string, Tensor> { ["t"] = source });

        var file = SafeTensorsFile.Open(path);
        file["t"].DType.Should().Be(type == ScalarType.Float16 ? SafeTensorsDType.F16 : SafeTensorsDType.BF16);
        using var read = file.ReadFloat32("t");
        read.dtype.Should().Be(ScalarType.Float32);
        return read.data<float>().ToArray();
    }

    [Fact]
    public void Python_written_safetensors_assets_read_with_their_dtypes()
    {
        var file = SafeTensorsFile.Open(CheckpointAssets.DTypesSafetensors);

        file["float16"].DType.Should().Be(SafeTensorsDType.F16);
        file["bfloat16"].DType.Should().Be(SafeTensorsDType.BF16);
        file["bool"].DType.Should().Be(SafeTensorsDType.Bool);
        using var ints = file.ReadRaw("int64");
        ints.data<long>().ToArray().Should().Equal(0, -1, 1L << 40, 7, -(1L << 62), 5);
        using var mask = file.ReadRaw("bool");
        mask.data<bool>().ToArray().Should().Equal(true, false, true, true);
        using var scalar = file.ReadFloat32("scalar");
        scalar.shape.Should().BeEmpty();
        scalar.item<float>().Should().Be(3.25f);
    }

    [Fact]
    public void Bool_bytes_other_than_zero_and_one_read_as_true()
    {
        var header = SafeTensorsBytes.OneTensor(dtype: "\"BOOL\"", shape: "[4]", offsets: "[0, 4]");
        var path = _dir.File("bool.safetensors");
        File.WriteAllBytes(path, SafeTensorsBytes.Build(System.Text.Encoding.UTF8.GetBytes(header), new byte[] { 0, 1, 2, 255 }));

        using var mask = SafeTensorsFile.Open(path).ReadRaw("t");

        mask.data<bool>().ToArray().Should().Equal(false, true, true, true);
    }
}
