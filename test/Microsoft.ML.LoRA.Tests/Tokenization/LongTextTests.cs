using System.Diagnostics;
using System.Text;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Tokenization;

namespace Microsoft.ML.LoRA.Tests.Tokenization;

/// <summary>Text far longer than the model's positions is truncated exactly, quickly, and never fails.</summary>
public class LongTextTests
{
    static readonly TransformerConfig Bert = TransformerConfig.Load(SharedData.Config("bert-base-uncased.json"));
    static readonly Lazy<ITextEncoder> Encoder = new(() => TextEncoders.FromFolder(SharedData.BertTokenizer, Bert));

    static string Megabyte(string unit)
    {
        var builder = new StringBuilder(1 << 20);
        while (builder.Length < 1 << 20) builder.Append(unit);
        return builder.ToString();
    }

    [Fact]
    public void A_megabyte_of_prose_gives_exactly_max_length_tokens_identical_to_encoding_a_prefix()
    {
        var sentences = File.ReadLines(SharedData.Data("sst2", "dev.tsv")).Skip(1).Select(l => l.Split('\t')[1]);
        var text = Megabyte(string.Join(" ", sentences) + " ");
        Encoder.Value.Encode("warm up");

        var watch = Stopwatch.StartNew();
        var encoded = Encoder.Value.Encode(text);
        watch.Stop();

        encoded.Length.Should().Be(512);
        encoded.InputIds[^1].Should().Be(102);
        encoded.InputIds.Should().Equal(Encoder.Value.Encode(text[..20_000]).InputIds, "the first 510 tokens come from the first few thousand characters");
        watch.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(1), "only a prefix of the text is tokenized");
    }

    [Fact]
    public void The_prefix_shortcut_gives_the_same_tokens_as_tokenizing_everything()
    {
        var sentences = File.ReadLines(SharedData.Data("sst2", "dev.tsv")).Skip(1).Take(200).Select(l => l.Split('\t')[1]).ToList();
        var text = string.Join("\n", sentences);
        var small = TextEncoders.FromFolder(SharedData.BertTokenizer, Bert, maxLength: 40);
        var full = Encoder.Value.Encode(text[..3000]).InputIds;

        // 40 tokens want 40 * 8 + 64 = 384 characters: the shortcut cuts the text; the full encoding does not.
        small.Encode(text).InputIds.Should().Equal([.. full.Take(39), 102]);
    }

    [Theory]
    [InlineData("abc,")]       // no whitespace at all: punctuation splits it into many tokens
    [InlineData("a")]          // one 1 MB word: WordPiece gives [UNK] for words over 100 characters
    [InlineData("\u4e2d")]     // CJK: one token per character
    public void A_megabyte_without_spaces_is_handled(string unit)
    {
        var text = Megabyte(unit);

        var watch = Stopwatch.StartNew();
        var encoded = Encoder.Value.Encode(text);
        watch.Stop();

        encoded.InputIds[0].Should().Be(101);
        encoded.InputIds[^1].Should().Be(102);
        if (unit == "a") encoded.InputIds.Should().Equal(101, 100, 102);
        else encoded.Length.Should().Be(512);
        watch.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void A_pair_of_megabyte_texts_is_truncated_longest_first()
    {
        var first = Megabyte("a ") + "a a";
        var second = Megabyte("b ");

        var encoded = Encoder.Value.Encode(first, second);

        // budget 509, both over it: 254 each and the longer one keeps the odd token. The first text is longer, so
        // this needs their full lengths (two capped lists would look equally long and give the token to the second).
        int a = BertVocab.Id("a"), b = BertVocab.Id("b");
        encoded.InputIds.Should().Equal([101, .. Enumerable.Repeat(a, 255), 102, .. Enumerable.Repeat(b, 254), 102]);
    }

    [Fact]
    public void A_megabyte_of_text_for_gpt2_is_truncated_quickly()
    {
        using var dir = new TempDir();
        var toy = ToyByteLevelBpe.Gpt2();
        toy.WriteVocabFiles(dir.Path);
        var encoder = TextEncoders.FromFolder(dir.Path, TransformerConfig.Load(SharedData.Config("gpt2.json")) with { EosTokenId = null });

        var watch = Stopwatch.StartNew();
        var prose = encoder.Encode(Megabyte("the "));
        var oneWord = encoder.Encode(Megabyte("x"));
        watch.Stop();

        prose.InputIds.Should().Equal([toy.Id("t"), toy.Id("he"), .. Enumerable.Repeat(toy.Id("Ġthe"), 1022)]);
        oneWord.InputIds.Should().Equal(Enumerable.Repeat(toy.Id("x"), 1024));
        watch.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(20));
    }
}
