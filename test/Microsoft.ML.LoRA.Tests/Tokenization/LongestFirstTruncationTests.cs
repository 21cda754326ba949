using Microsoft.ML.LoRA.Tokenization;

namespace Microsoft.ML.LoRA.Tests.Tokenization;

/// <summary>Hugging Face tokenizers' longest_first lengths for a pair under a budget.</summary>
public class LongestFirstTruncationTests
{
    [Theory]
    [InlineData(3, 4, 10, 3, 4)]     // fits
    [InlineData(20, 3, 10, 7, 3)]    // the shorter is kept whole
    [InlineData(3, 20, 10, 3, 7)]
    [InlineData(8, 7, 10, 5, 5)]     // both over half: half each
    [InlineData(8, 7, 9, 5, 4)]      // odd budget: the longer keeps the extra token
    [InlineData(7, 8, 9, 4, 5)]
    [InlineData(7, 7, 9, 4, 5)]      // tie: the second keeps it
    [InlineData(100, 50, 9, 5, 4)]   // both over the whole budget
    [InlineData(5, 5, 0, 0, 0)]
    public void Lengths_match_hugging_face(int first, int second, int budget, int keepFirst, int keepSecond) =>
        LongestFirstTruncation.Lengths(first, second, budget).Should().Be((keepFirst, keepSecond));

    [Fact]
    public void Result_always_fits_the_budget_and_never_grows_a_text()
    {
        for (int a = 0; a < 30; a++)
        for (int b = 0; b < 30; b++)
        for (int budget = 0; budget < 40; budget++)
        {
            var (x, y) = LongestFirstTruncation.Lengths(a, b, budget);
            (x + y).Should().Be(Math.Min(a + b, budget));
            x.Should().BeInRange(0, a);
            y.Should().BeInRange(0, b);
        }
    }
}
