using Microsoft.ML.LoRA.Tokenization;

namespace Microsoft.ML.LoRA.Tests.Tokenization;

/// <summary>The prefix shortcut: where it may cut and how much text it hands to the tokenizer.</summary>
public class LongTextTokenizerTests
{
    /// <summary>A stand-in tokenizer: one token per whitespace-separated word, recording the lengths it was given.</summary>
    sealed class WordCounter
    {
        public List<int> Lengths { get; } = new();

        public void Tokenize(string text, List<int> ids)
        {
            Lengths.Add(text.Length);
            ids.AddRange(text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Select(w => w.Length));
        }
    }

    [Theory]
    [InlineData("ab cd", 4, 2)]
    [InlineData("ab  cd", 4, 2)]      // never between two whitespace characters
    [InlineData("ab\ncd ef", 7, 5)]
    [InlineData("ab\u00a0cd", 4, 0)]  // only space, tab, newline and carriage return are cut points
    [InlineData("abcdef", 5, 0)]
    [InlineData(" abc", 3, 0)]        // index 0 is never a cut (the prefix would be empty)
    public void Cuts_before_a_space_that_follows_a_non_space(string text, int window, int expected) =>
        LongTextTokenizer.FindCut(text, window).Should().Be(expected);

    [Fact]
    public void A_tokenizer_may_name_its_own_cut_characters_or_none()
    {
        // Llama-3's split joins "." with the line break after it, so it allows cuts before spaces and tabs only.
        LongTextTokenizer.FindCut("a.\nb c", 5, " \t").Should().Be(4);
        LongTextTokenizer.FindCut("a.\nb c", 5).Should().Be(4);
        LongTextTokenizer.FindCut("a.\nbc", 5, " \t").Should().Be(0);
        var counter = new WordCounter();
        var text = string.Join(" ", Enumerable.Range(0, 1000).Select(i => "word"));

        new LongTextTokenizer(counter.Tokenize, cutBefore: "").AtMost(text, 3).Should().HaveCount(3);

        counter.Lengths.Should().Equal(text.Length);
    }

    [Fact]
    public void Only_a_prefix_of_a_long_text_is_tokenized()
    {
        var counter = new WordCounter();
        var tokenizer = new LongTextTokenizer(counter.Tokenize);
        var text = string.Join(" ", Enumerable.Range(0, 100_000).Select(i => "word"));

        var ids = tokenizer.AtMost(text, 10);

        ids.Should().HaveCount(10);
        counter.Lengths.Should().ContainSingle().Which.Should().BeLessThan(10 * LongTextTokenizer.CharsPerToken + 64 + 1);
    }

    [Fact]
    public void A_prefix_with_too_few_tokens_is_doubled_until_it_has_enough()
    {
        var counter = new WordCounter();
        var tokenizer = new LongTextTokenizer(counter.Tokenize);
        // A short word, a 1000-character word, then short words: the first prefixes can only cut after "ab".
        var text = "ab " + new string('x', 1000) + string.Concat(Enumerable.Repeat(" ab", 1000));

        var ids = tokenizer.AtMost(text, 50);

        ids.Should().Equal([2, 1000, .. Enumerable.Repeat(2, 48)]);
        counter.Lengths.Should().HaveCountGreaterThan(1).And.BeInAscendingOrder();
        counter.Lengths[^1].Should().BeLessThan(text.Length);
    }

    [Fact]
    public void A_short_text_is_tokenized_whole_and_truncated()
    {
        var counter = new WordCounter();
        var tokenizer = new LongTextTokenizer(counter.Tokenize);

        tokenizer.AtMost("a bb ccc", 2).Should().Equal(1, 2);
        tokenizer.AtMost("a bb ccc", 0).Should().BeEmpty();
        tokenizer.AtMost("", 5).Should().BeEmpty();
        counter.Lengths.Should().Equal(8);
    }
}
