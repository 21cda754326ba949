using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models.Quantization;
using Microsoft.ML.LoRA.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tests.Models.Quantization;

/// <summary>
/// NF4 and FP4 weights, with and without double quantization, against what bitsandbytes' own quantize_4bit and
/// dequantize_4bit give (Fixtures/bitsandbytes, made by make_fixtures.py): the block maxima the weight is rebuilt with,
/// and every rebuilt value. Equal rebuilt values mean equal 4-bit codes, since the 16 levels are distinct. The shapes
/// end in a short block, hold an all-zero block, and (96 x 200) make 300 blocks, so the double-quantized maxima fill
/// one second-level block of 256 and part of another.
/// </summary>
/// <remarks>
/// Without double quantization every bit must agree, but the sign of an FP4 zero: bitsandbytes' CUDA kernel, like this
/// library, gives a small negative value the negative zero (sign bit set), its plain-PyTorch CPU kernel either zero.
/// With double quantization bitsandbytes' own result moves by an ulp from machine to machine: it subtracts the maxima's
/// mean (torch.mean, whose summation order varies) and quantizes with a map built by torch.linspace (whose vectorized
/// rounding varies), so there the maxima and weights must agree within 1e-6 relative, which one code apart never does.
/// </remarks>
public class BitsAndBytesParityTests
{
    static readonly string CasesPath =
        Path.Combine(SharedData.RepoRoot, "test", "Microsoft.ML.LoRA.Tests", "Fixtures", "bitsandbytes", "cases.safetensors");

    public static IEnumerable<object[]> Cases =>
        from shape in new[] { "w96x200", "w7x50" }
        from kind in new[] { BaseQuantization.Nf4, BaseQuantization.Fp4 }
        from doubleQuantization in new[] { false, true }
        select new object[] { shape, kind, doubleQuantization };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Block_maxima_and_every_rebuilt_weight_equal_bitsandbytes(string shape, BaseQuantization kind, bool doubleQuantization)
    {
        var file = SafeTensorsFile.Open(CasesPath);
        string key = $"{shape}.{(kind == BaseQuantization.Nf4 ? "nf4" : "fp4")}{(doubleQuantization ? ".double" : "")}";
        using var weight = file.ReadFloat32($"{shape}.weight");
        var expectedScales = Read(file, key + ".scales");
        var expectedWeight = Read(file, key + ".dequantized");

        using var quantized = QuantizedWeight.Quantize(weight, kind, doubleQuantization);
        using var rebuilt = quantized.Dequantize();
        var scales = quantized.Scales();
        var values = Values(rebuilt);

        if (doubleQuantization)
        {
            Within(scales, expectedScales).Should().BeEmpty();
            Within(values, expectedWeight).Should().BeEmpty();
        }
        else
        {
            Bits(scales).Should().Equal(Bits(expectedScales));
            Bits(values, unsignedZero: kind == BaseQuantization.Fp4).Should().Equal(Bits(expectedWeight, unsignedZero: kind == BaseQuantization.Fp4));
        }
        rebuilt.ne(weight).any().item<bool>().Should().BeTrue("quantizing must have changed the weight, or the comparison proves nothing");
    }

    [Fact]
    public void A_small_negative_FP4_value_keeps_its_sign_in_a_negative_zero_as_bitsandbytes_CUDA_kernel_gives_it()
    {
        using var weight = torch.tensor(new float[] { 1f, -0.001f, 0.001f, -1f }).reshape(1, 4);
        using var quantized = QuantizedWeight.Quantize(weight, BaseQuantization.Fp4, doubleQuantization: false, blockSize: 16);
        using var rebuilt = quantized.Dequantize();

        Bits(Values(rebuilt)).Should().Equal(Bits(new[] { 1f, -0f, 0f, -1f }));
    }

    static float[] Values(Tensor t)
    {
        using var flat = t.reshape(-1);
        return flat.data<float>().ToArray();
    }

    static float[] Read(SafeTensorsFile file, string name)
    {
        using var t = file.ReadFloat32(name);
        return Values(t);
    }

    static int[] Bits(float[] values, bool unsignedZero = false) =>
        values.Select(v => BitConverter.SingleToInt32Bits(unsignedZero && v == 0 ? 0f : v)).ToArray();

    static List<string> Within(float[] actual, float[] expected) =>
        actual.Select((a, i) => (a, e: expected[i], i))
            .Where(c => Math.Abs(c.a - c.e) > 1e-6 * Math.Abs(c.e) + 1e-30)
            .Select(c => $"[{c.i}] {c.a:R} vs bitsandbytes {c.e:R}").Take(5).ToList();
}
