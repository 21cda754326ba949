using System.Globalization;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tokenization;

namespace Microsoft.ML.LoRA.Tests.Tokenization;

/// <summary>
/// The charsmap's two readers (Hugging Face's Precompiled normalizer, SentencePiece's normalizer) on a charsmap built
/// by <see cref="CharsmapBuilder"/>, and the stand-in characters of <see cref="CodePointRegex"/>.
/// </summary>
public class PrecompiledCharsmapTests
{
    static PrecompiledCharsmap Charsmap(Dictionary<string, string> rules) =>
        PrecompiledCharsmap.Parse(CharsmapBuilder.Build(rules), "test", "charsmap");

    [Fact]
    public void Hugging_face_rewrites_each_grapheme_by_the_shortest_rule_and_sentencepiece_takes_the_longest()
    {
        var charsmap = Charsmap(new() { ["a"] = "x", ["ab"] = "y", ["e\u0301"] = "\u00E9" });

        // Graphemes "a", "b": "a" -> x (shortest rule), "b" has none. SentencePiece matches "ab" -> y at position 0.
        charsmap.NormalizeLikeHuggingFace("ab").Should().Be("xb");
        charsmap.LongestMatch("ab"u8, out int length, out var replacement).Should().BeTrue();
        length.Should().Be(2);
        System.Text.Encoding.UTF8.GetString(replacement).Should().Be("y");
        // e + combining acute is one grapheme (3 bytes < 6), rewritten whole.
        charsmap.NormalizeLikeHuggingFace("ne\u0301!").Should().Be("n\u00E9!");
        charsmap.LongestMatch("zz"u8, out _, out _).Should().BeFalse();
    }

    [Fact]
    public void A_rule_can_remove_a_character()
    {
        var charsmap = Charsmap(new() { ["\u200B"] = "" });

        charsmap.NormalizeLikeHuggingFace("a\u200Bb").Should().Be("ab");
    }

    [Fact]
    public void A_charsmap_whose_trie_size_overruns_the_blob_is_a_format_error()
    {
        var blob = CharsmapBuilder.Build(new Dictionary<string, string> { ["a"] = "b" });
        blob[3] = 0x7F;

        var act = () => PrecompiledCharsmap.Parse(blob, "spm.model", "normalizer_spec.precompiled_charsmap");

        act.Should().Throw<CheckpointFormatException>().Which.Message.Should().Contain("spm.model").And.Contain("precompiled_charsmap");
    }

    [Fact]
    public void Every_stand_in_character_has_the_category_it_stands_for()
    {
        foreach (var (category, standIn) in CodePointRegex.StandIns)
        {
            CharUnicodeInfo.GetUnicodeCategory(standIn).Should().Be(category, "U+{0:X4}", (int)standIn);
            char.IsWhiteSpace(standIn).Should().Be(category is UnicodeCategory.SpaceSeparator or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator);
        }
        CodePointRegex.StandIns.Should().HaveCount(Enum.GetValues<UnicodeCategory>().Length - 1, "every category but Surrogate");
    }
}
