using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Models.Kernels;
using Microsoft.ML.LoRA.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tests.Models;

/// <summary>Dropout keep-masks: the asked-for probability, independent elements, and reproducible from torch's seed.</summary>
public class DropoutMaskTests
{
    static bool[] Draw(long size, double p, int seed)
    {
        lock (TorchRandomLock.Sync)
        {
            torch.manual_seed(seed);
            using var like = torch.empty(size);
            using var keep = DropoutMask.Keep(like, p);
            keep.dtype.Should().Be(ScalarType.Bool);
            keep.shape.Should().Equal(size);
            return keep.data<bool>().ToArray();
        }
    }

    [Theory]
    [InlineData(0.05)]
    [InlineData(0.1)]
    [InlineData(0.5)]
    [InlineData(0.9)]
    public void Each_element_is_dropped_with_probability_p(double p)
    {
        // 2^21 + 37 elements: the vector path and, for the odd tail, the one-by-one path.
        var keep = Draw((1 << 21) + 37, p, seed: 1);

        double dropped = keep.Count(k => !k) / (double)keep.Length;
        double sd = Math.Sqrt(p * (1 - p) / keep.Length);
        dropped.Should().BeApproximately(p, 5 * sd);
    }

    [Fact]
    public void Neighbouring_elements_are_independent()
    {
        // Elements 2i and 2i+1 come from the two halves of one hash; 2i+1 and 2i+2 from neighbouring hashes.
        const double p = 0.3;
        var keep = Draw(1 << 21, p, seed: 2);
        int pairs = keep.Length - 1, bothDropped = 0;
        for (int j = 0; j < pairs; j++)
            if (!keep[j] && !keep[j + 1]) bothDropped++;

        double share = bothDropped / (double)pairs;
        double sd = Math.Sqrt(p * p * (1 - p * p) / pairs);
        share.Should().BeApproximately(p * p, 5 * sd);
    }

    [Fact]
    public void The_same_torch_seed_gives_the_same_mask_and_the_next_draw_a_different_one()
    {
        var first = Draw(100_000, 0.5, seed: 7);
        var again = Draw(100_000, 0.5, seed: 7);
        var other = Draw(100_000, 0.5, seed: 8);

        again.Should().Equal(first);
        other.Zip(first, (a, b) => a == b).Count(same => same).Should().BeLessThan(55_000, "a new seed gives a new mask");
    }

    [Fact]
    public void An_element_gets_the_same_draw_whether_the_vector_or_the_one_by_one_path_fills_it()
    {
        // With 1000 elements the last 40 are filled one at a time; with 1192 they fall in a vector block.
        var shorter = Draw(1000, 0.5, seed: 9);
        var longer = Draw(1192, 0.5, seed: 9);

        longer.Take(1000).Should().Equal(shorter);
    }

    [Fact]
    public void Every_kernel_this_CPU_runs_fills_the_same_bits_as_the_one_by_one_kernel()
    {
        var kernels = Enum.GetValues<DropoutMask.Kernel>().Where(DropoutMask.Supports).ToList();
        kernels.Should().Contain(DropoutMask.Best).And.Contain(DropoutMask.Kernel.OneByOne);
        foreach (var kernel in kernels)
            foreach (uint threshold in new[] { 0u, 1u, 0x8000_0000u, 0xF333_3333u, uint.MaxValue })
            {
                // 4133 elements: whole blocks of every vector kernel and an odd tail.
                using var expected = torch.empty(4133, ScalarType.Bool);
                using var actual = torch.empty(4133, ScalarType.Bool);
                DropoutMask.Fill(expected, 0x1234_5678_9ABCUL, threshold, DropoutMask.Kernel.OneByOne);
                DropoutMask.Fill(actual, 0x1234_5678_9ABCUL, threshold, kernel);

                actual.data<bool>().ToArray().Should().Equal(expected.data<bool>().ToArray(), $"{kernel} at threshold {threshold:X8}");
            }
    }

    [Theory]
    [InlineData(4133)]      // whole blocks of every vector kernel and an odd tail, on one thread
    [InlineData(600_001)]   // split between threads, each part starting where the one before ended
    public void Every_kernel_scales_exactly_the_elements_the_mask_keeps(int size)
    {
        const ulong seed = 0x0F0E_0D0C_0B0AUL;
        const uint threshold = 0x3333_3333u;   // p = 0.2
        using var source = torch.rand(size, generator: new Generator(11)).add_(0.5);
        using var keep = torch.empty(size, ScalarType.Bool);
        DropoutMask.Fill(keep, seed, threshold, DropoutMask.Kernel.OneByOne);
        using var expected = source.mul(keep).mul_(2.5);

        foreach (var kernel in Enum.GetValues<DropoutMask.Kernel>().Where(DropoutMask.Supports))
        {
            using var actual = torch.full(size, float.NaN);
            DropoutMask.ScaleKept(source, actual, seed, threshold, 2.5f, kernel);

            actual.allclose(expected, rtol: 0, atol: 0).Should().BeTrue($"{kernel} must keep, scale and zero the elements the mask says");
        }
    }

    [Theory]
    [InlineData(4133, 1000)]        // one thread
    [InlineData(600_001, 123_456)]  // split between threads
    public void A_slice_scaled_from_its_offset_gets_the_part_of_the_whole_tensors_mask_that_falls_on_it(int size, int offset)
    {
        const ulong seed = 77;
        const uint threshold = 0x8000_0000u;   // p = 0.5
        using var whole = torch.rand(size, generator: new Generator(5)).add_(0.5);
        using var expectedWhole = torch.empty(size);
        DropoutMask.ScaleKept(whole, expectedWhole, seed, threshold, 2f, DropoutMask.Best);
        using var slice = whole.narrow(0, offset, size - offset).contiguous();
        using var expected = expectedWhole.narrow(0, offset, size - offset);

        foreach (var kernel in Enum.GetValues<DropoutMask.Kernel>().Where(DropoutMask.Supports))
        {
            using var actual = torch.full(size - offset, float.NaN);
            DropoutMask.ScaleKept(slice, actual, seed, threshold, 2f, kernel, elementOffset: offset);

            actual.allclose(expected, rtol: 0, atol: 0).Should().BeTrue($"{kernel} from element {offset}");
        }
        using var odd = torch.empty(10);
        var act = () => DropoutMask.ScaleKept(odd, odd, seed, threshold, 2f, DropoutMask.Best, elementOffset: 3);
        act.Should().Throw<ArgumentOutOfRangeException>();
    }

    [Fact]
    public void Probabilities_zero_and_one_keep_everything_and_nothing()
    {
        Draw(300, 0.0, seed: 1).Should().OnlyContain(k => k);
        Draw(300, 1.0, seed: 1).Should().OnlyContain(k => !k);
    }
}
