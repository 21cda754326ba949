using Microsoft.ML.LoRA.Models.Quantization;
using TorchSharp;
using static Microsoft.ML.LoRA.Tests.Models.Quantization.QuantizationReference;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tests.Models.Quantization;

/// <summary>
/// The quantized base weight: NF4, FP4 and int8 as bitsandbytes stores them, element for element against a plain
/// reference; double quantization's size and error; odd shapes and zero blocks; and every kernel giving the same bits.
/// </summary>
public class QuantizedWeightTests
{
    static Tensor RandomWeight(long rows, long columns, int seed)
    {
        var generator = new Generator((ulong)seed);
        return torch.randn(new[] { rows, columns }, generator: generator);
    }

    static float[] Values(Tensor t) => t.contiguous().data<float>().ToArray();

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    static float[] Dequantized(QuantizedWeight q)
    {
        using var w = q.Dequantize();
        w.shape.Should().Equal(q.Rows, q.Columns);
        w.dtype.Should().Be(ScalarType.Float32);
        w.requires_grad.Should().BeFalse();
        return Values(w);
    }

    static float[] Reference(float[] w, BaseQuantization kind, int rows, int columns, int blockSize = 64) => kind switch
    {
        BaseQuantization.Nf4 => FourBit(w, Nf4, blockSize),
        BaseQuantization.Fp4 => FourBit(w, Fp4, blockSize),
        _ => Int8(w, rows, columns),
    };

    [Theory]
    [InlineData(BaseQuantization.Nf4, 0.0921)]
    [InlineData(BaseQuantization.Fp4, 0.1220)]
    [InlineData(BaseQuantization.Int8, 0.0072)]
    public void Each_weight_comes_back_as_its_nearest_level_times_its_scale(BaseQuantization kind, double expectedError)
    {
        using var weight = RandomWeight(256, 320, seed: 1);
        var w = Values(weight);

        using var q = QuantizedWeight.Quantize(weight, kind);

        var expected = Reference(w, kind, 256, 320);
        var actual = Dequantized(q);
        MaxDifference(actual, expected).Should().BeLessThan(1e-6);
        RelativeError(w, actual).Should().BeApproximately(RelativeError(w, expected), 1e-6)
            .And.BeApproximately(expectedError, 0.002, "bitsandbytes' formats leave this much error on normal weights");
        (q.Kind, q.Rows, q.Columns, q.DoubleQuantization).Should().Be((kind, 256L, 320L, false));
    }

    [Theory]
    [InlineData(BaseQuantization.Nf4, 4.5)]
    [InlineData(BaseQuantization.Fp4, 4.5)]
    [InlineData(BaseQuantization.Int8, 8 + 32.0 / 320)]
    public void Storage_is_four_bits_a_weight_and_a_float_a_block_or_eight_bits_and_a_float_a_row(BaseQuantization kind, double bits)
    {
        using var weight = RandomWeight(256, 320, seed: 2);

        using var q = QuantizedWeight.Quantize(weight, kind);

        q.BitsPerWeight.Should().BeApproximately(bits, 1e-9);
        q.StorageBytes.Should().Be((long)Math.Round(bits * 256 * 320 / 8));
    }

    [Theory]
    [InlineData(BaseQuantization.Nf4)]
    [InlineData(BaseQuantization.Fp4)]
    public void Double_quantization_stores_the_block_maxima_in_eight_bits_for_little_extra_error(BaseQuantization kind)
    {
        using var weight = RandomWeight(256, 320, seed: 3);
        var w = Values(weight);
        using var single = QuantizedWeight.Quantize(weight, kind);

        using var q = QuantizedWeight.Quantize(weight, kind, doubleQuantization: true);

        // 1280 blocks: 4 bits a weight, 8 bits a block, 5 second-level fp32 maxima and the fp32 mean.
        q.DoubleQuantization.Should().BeTrue();
        q.StorageBytes.Should().Be(256 * 320 / 2 + 1280 + 5 * 4 + 4);
        q.BitsPerWeight.Should().BeLessThanOrEqualTo(4.2).And.BeApproximately(4.127, 0.001);
        var scales = DoubleQuantizedScales(BlockAbsmax(w, 64));
        var levels = kind == BaseQuantization.Nf4 ? Nf4 : Fp4;
        MaxDifference(q.Scales(), scales).Should().BeLessThan(1e-5);
        MaxDifference(Dequantized(q), FourBit(w, levels, 64, scales)).Should().BeLessThan(1e-5);
        double plain = RelativeError(w, Dequantized(single)), doubled = RelativeError(w, Dequantized(q));
        doubled.Should().BeGreaterThan(plain * 0.97).And.BeLessThan(plain * 1.03);
    }

    [Fact]
    public void The_dynamic_map_is_bitsandbytes_signed_eight_bit_map()
    {
        var map = CodeBooks.Dynamic8Bit.ToArray();

        map.Should().HaveCount(256).And.BeInAscendingOrder();
        map[^1].Should().Be(1f);
        map.Should().Contain(0f);
        map[0].Should().BeApproximately(-0.9929688f, 1e-7f);
        MaxDifference(map, DynamicMap()).Should().BeLessThan(1e-7);
    }

    [Fact]
    public void The_code_books_are_the_published_levels()
    {
        CodeBooks.Nf4.ToArray().Should().Equal(Nf4);
        MaxDifference(CodeBooks.Fp4.ToArray(), Fp4).Should().BeLessThan(1e-7);
    }

    [Theory]
    [InlineData(BaseQuantization.Nf4, 7, 13)]      // 91 weights: one short block, and an odd count (half a byte)
    [InlineData(BaseQuantization.Nf4, 3, 100)]     // rows cross block boundaries
    [InlineData(BaseQuantization.Fp4, 5, 37)]
    [InlineData(BaseQuantization.Int8, 7, 13)]
    [InlineData(BaseQuantization.Int8, 3, 100)]    // rows longer than a vector, with a tail
    [InlineData(BaseQuantization.Nf4, 1, 1)]
    public void Shapes_that_do_not_fill_whole_blocks_round_trip_like_the_reference(BaseQuantization kind, int rows, int columns)
    {
        using var weight = RandomWeight(rows, columns, seed: rows * 1000 + columns);
        var w = Values(weight);

        using var q = QuantizedWeight.Quantize(weight, kind);

        MaxDifference(Dequantized(q), Reference(w, kind, rows, columns)).Should().BeLessThan(1e-6);
    }

    [Fact]
    public void Other_block_sizes_cut_the_weight_accordingly()
    {
        using var weight = RandomWeight(40, 50, seed: 4);
        var w = Values(weight);

        using var q = QuantizedWeight.Quantize(weight, BaseQuantization.Nf4, blockSize: 128);

        q.BlockSize.Should().Be(128);
        MaxDifference(Dequantized(q), FourBit(w, Nf4, 128)).Should().BeLessThan(1e-6);
        q.StorageBytes.Should().Be(2000 / 2 + 16 * 4);
    }

    [Theory]
    [InlineData(BaseQuantization.Nf4, false)]
    [InlineData(BaseQuantization.Nf4, true)]
    [InlineData(BaseQuantization.Fp4, false)]
    [InlineData(BaseQuantization.Int8, false)]
    public void Zero_blocks_and_rows_come_back_as_zeros(BaseQuantization kind, bool doubleQuantization)
    {
        using var weight = RandomWeight(6, 64, seed: 5);
        weight[1].zero_();                  // a whole block and a whole row
        weight[3, TensorIndex.Slice(0, 32)].zero_();
        var w = Values(weight);
        using var zeros = torch.zeros(6, 64);

        using var q = QuantizedWeight.Quantize(weight, kind, doubleQuantization);
        using var allZero = QuantizedWeight.Quantize(zeros, kind, doubleQuantization);

        var actual = Dequantized(q);
        actual.Should().OnlyContain(v => float.IsFinite(v));
        actual.Skip(64).Take(64).Should().OnlyContain(v => v == 0);
        actual.Skip(3 * 64).Take(32).Should().OnlyContain(v => v == 0);
        if (!doubleQuantization) MaxDifference(actual, Reference(w, kind, 6, 64)).Should().BeLessThan(1e-6);
        Dequantized(allZero).Should().OnlyContain(v => v == 0);
    }

    [Theory]
    [InlineData(BaseQuantization.Nf4, false)]
    [InlineData(BaseQuantization.Nf4, true)]
    [InlineData(BaseQuantization.Fp4, false)]
    [InlineData(BaseQuantization.Int8, false)]
    public void Every_kernel_this_CPU_runs_gives_the_scalar_kernels_bits(BaseQuantization kind, bool doubleQuantization)
    {
        // 2048 x 2048 fp32 is 16 MiB: DequantizeInto streams it past the caches.
        using var weight = RandomWeight(2048, 2048, seed: 6);
        var kernels = Enum.GetValues<QuantizationKernel>().Where(QuantizationKernels.Supports).ToList();
        kernels.Should().Contain(QuantizationKernels.Best).And.Contain(QuantizationKernel.Scalar);
        using var scalar = QuantizedWeight.Quantize(weight, kind, doubleQuantization, 64, QuantizationKernel.Scalar);
        using var expected = scalar.Dequantize(QuantizationKernel.Scalar);
        using var buffer = torch.empty(2048, 2048);

        foreach (var kernel in kernels)
        {
            using var q = QuantizedWeight.Quantize(weight, kind, doubleQuantization, 64, kernel);
            using var fresh = q.Dequantize(kernel);
            q.DequantizeInto(buffer, kernel);

            Same(fresh, expected).Should().BeTrue($"the {kernel} kernel's quantize and dequantize match the scalar ones");
            Same(buffer, expected).Should().BeTrue($"the {kernel} kernel's DequantizeInto matches");
            Same(scalar.Dequantize(kernel), expected).Should().BeTrue($"the {kernel} kernel reads scalar codes alike");
        }
    }

    [Fact]
    public void Other_floating_types_are_quantized_from_their_fp32_values()
    {
        using var weight = RandomWeight(16, 64, seed: 7);
        using var half = weight.to_type(ScalarType.BFloat16);
        using var widened = half.to_type(ScalarType.Float32);

        using var fromHalf = QuantizedWeight.Quantize(half, BaseQuantization.Nf4);
        using var fromFloat = QuantizedWeight.Quantize(widened, BaseQuantization.Nf4);

        Dequantized(fromHalf).Should().Equal(Dequantized(fromFloat));
    }

    [Fact]
    public void A_weight_that_requires_grad_is_quantized_without_recording_a_graph()
    {
        using var weight = RandomWeight(8, 64, seed: 8).requires_grad_(true);

        using var q = QuantizedWeight.Quantize(weight, BaseQuantization.Nf4);

        Dequantized(q).Should().HaveCount(512);
    }

    [Fact]
    public void Impossible_requests_are_refused()
    {
        using var weight = RandomWeight(4, 64, seed: 9);
        using var cube = torch.zeros(2, 2, 64);

        FluentActions.Invoking(() => QuantizedWeight.Quantize(weight, BaseQuantization.None))
            .Should().Throw<ArgumentException>().WithMessage("*None*nothing to quantize*");
        FluentActions.Invoking(() => QuantizedWeight.Quantize(weight, BaseQuantization.Int8, doubleQuantization: true))
            .Should().Throw<ArgumentException>().WithMessage("*double quantization*Int8*");
        FluentActions.Invoking(() => QuantizedWeight.Quantize(weight, BaseQuantization.Nf4, blockSize: 50))
            .Should().Throw<ArgumentException>().WithMessage("*multiple of 16*");
        FluentActions.Invoking(() => QuantizedWeight.Quantize(cube, BaseQuantization.Nf4))
            .Should().Throw<ArgumentException>().WithMessage("*2-D*");
    }

    [Fact]
    public void A_destination_of_the_wrong_size_or_type_is_refused_and_a_disposed_weight_cannot_be_read()
    {
        using var weight = RandomWeight(4, 64, seed: 10);
        var q = QuantizedWeight.Quantize(weight, BaseQuantization.Nf4);
        using var small = torch.empty(4, 63);
        using var doubles = torch.empty(new long[] { 4, 64 }, ScalarType.Float64);
        using var flat = torch.empty(256);

        q.DequantizeInto(flat);
        flat.data<float>().ToArray().Should().Equal(Dequantized(q), "any shape with the same number of elements is filled row-major");
        FluentActions.Invoking(() => q.DequantizeInto(small)).Should().Throw<ArgumentException>().WithMessage("*252 elements*");
        FluentActions.Invoking(() => q.DequantizeInto(doubles)).Should().Throw<ArgumentException>().WithMessage("*Float64*");
        q.Dispose();
        FluentActions.Invoking(() => q.Dequantize()).Should().Throw<ObjectDisposedException>();
    }
}
