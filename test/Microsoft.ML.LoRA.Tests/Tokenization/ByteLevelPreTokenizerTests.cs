using Microsoft.ML.LoRA.Tokenization;

namespace Microsoft.ML.LoRA.Tests.Tokenization;

/// <summary>
/// The GPT-2 split <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c>, case by case.
/// </summary>
public class ByteLevelPreTokenizerTests
{
    static string[] Pieces(string text) =>
        ByteLevelPreTokenizer.Split(text).Select(p => text.Substring(p.Offset, p.Length)).ToArray();

    [Theory]
    [InlineData("Hello world", new[] { "Hello", " world" })]
    [InlineData("don't we'll I'M", new[] { "don", "'t", " we", "'ll", " I", "'", "M" })]
    [InlineData("it's 'sup", new[] { "it", "'s", " '", "sup" })]
    [InlineData("$100 and 3.5", new[] { "$", "100", " and", " 3", ".", "5" })]
    [InlineData("hi!!  ", new[] { "hi", "!!", "  " })]
    [InlineData("a  b", new[] { "a", " ", " b" })]
    [InlineData("a   b", new[] { "a", "  ", " b" })]
    [InlineData("a\n\nb", new[] { "a", "\n", "\n", "b" })]
    [InlineData("a \n b", new[] { "a", " \n", " b" })]
    [InlineData(" ", new[] { " " })]
    [InlineData("x\t", new[] { "x", "\t" })]
    [InlineData("e\u0301t\u00e9", new[] { "e", "\u0301", "t\u00e9" })]
    [InlineData("ab12cd", new[] { "ab", "12", "cd" })]
    [InlineData("😀😀 ok", new[] { "😀😀", " ok" })]
    public void Splits_like_the_gpt2_pattern(string text, string[] expected) => Pieces(text).Should().Equal(expected);

    [Fact]
    public void Letters_outside_the_basic_plane_are_letters()
    {
        // U+1D400 MATHEMATICAL BOLD CAPITAL A is a letter (Lu); a UTF-16 regex would see two surrogates instead.
        Pieces("𝐀𝐁c 𝟏2").Should().Equal("𝐀𝐁c", " 𝟏2");
    }
}
