using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Tokenization;

namespace Microsoft.ML.LoRA.Tests.Tokenization;

/// <summary>
/// BERT tokenization with the real bert-base-uncased files. Expected ids come from vocab.txt line numbers and from what
/// Hugging Face's BertTokenizerFast produces (BertNormalizer + BertPreTokenizer + WordPiece).
/// </summary>
public class WordPieceTextEncoderTests
{
    static readonly TransformerConfig Config = TransformerConfig.Load(SharedData.Config("bert-base-uncased.json"));
    static readonly Lazy<ITextEncoder> Shared = new(() => TextEncoders.FromFolder(SharedData.BertTokenizer, Config));

    static ITextEncoder Encoder => Shared.Value;

    const int Cls = 101, Sep = 102, Unk = 100;

    static int[] Single(params string[] tokens) => [Cls, .. BertVocab.Of(tokens), Sep];

    [Fact]
    public void Hello_world_gets_the_known_ids()
    {
        var encoded = Encoder.Encode("Hello, world!");

        encoded.InputIds.Should().Equal(101, 7592, 1010, 2088, 999, 102);
        encoded.TokenTypeIds.Should().Equal(0, 0, 0, 0, 0, 0);
    }

    [Fact]
    public void The_loaded_encoder_is_wordpiece_from_tokenizer_json_with_bert_limits()
    {
        var encoder = Encoder.Should().BeOfType<WordPieceTextEncoder>().Subject;

        encoder.Source.Should().EndWith("tokenizer.json");
        encoder.MaxLength.Should().Be(512);
        encoder.PadTokenId.Should().Be(BertVocab.Id("[PAD]"));
        encoder.Lowercase.Should().BeTrue();
        encoder.StripAccents.Should().BeTrue("an uncased model strips accents when strip_accents is null");
    }

    [Theory]
    [InlineData("Café", new[] { "cafe" })]
    [InlineData("NAÏVE", new[] { "naive" })]
    [InlineData("The QUICK Brown fox", new[] { "the", "quick", "brown", "fox" })]
    public void Text_is_lowercased_and_accents_are_stripped(string text, string[] tokens) =>
        Encoder.Encode(text).InputIds.Should().Equal(Single(tokens));

    [Theory]
    [InlineData("unaffable", new[] { "una", "##ffa", "##ble" })]
    [InlineData("tokenization", new[] { "token", "##ization" })]
    public void An_out_of_vocabulary_word_splits_into_continuation_pieces(string text, string[] tokens) =>
        Encoder.Encode(text).InputIds.Should().Equal(Single(tokens));

    [Fact]
    public void A_symbol_without_a_vocabulary_entry_becomes_unk()
    {
        BertVocab.Contains("😀").Should().BeFalse();

        Encoder.Encode("ok 😀 ok").InputIds.Should().Equal(Cls, BertVocab.Id("ok"), Unk, BertVocab.Id("ok"), Sep);
        Encoder.Encode("☃").InputIds.Should().Equal(Cls, Unk, Sep);
    }

    [Fact]
    public void Newlines_and_tabs_separate_words()
    {
        Encoder.Encode("hello\nworld").InputIds.Should().Equal(Single("hello", "world"));
        Encoder.Encode("hello\tworld\r\nagain").InputIds.Should().Equal(Single("hello", "world", "again"));
    }

    [Fact]
    public void Ascii_symbols_are_split_off_as_punctuation_and_other_symbols_stay_in_words()
    {
        Encoder.Encode("$5 and 3+4=7").InputIds.Should().Equal(Single("$", "5", "and", "3", "+", "4", "=", "7"));
        Encoder.Encode("foo_bar").InputIds.Should().Equal(Single("foo", "_", "bar"));
        Encoder.Encode("£3 £").InputIds.Should().Equal(Single("£3", "£"));
    }

    [Fact]
    public void Format_characters_are_removed_before_splitting()
    {
        // A soft hyphen (U+00AD, category Cf) disappears: "don\u00ADt" is the word "dont".
        Encoder.Encode("don\u00ADt").InputIds.Should().Equal(Single("don", "##t"));
        Encoder.Encode("a\u200Bb").InputIds.Should().Equal(Encoder.Encode("ab").InputIds);
    }

    [Fact]
    public void Hangul_stays_decomposed_into_jamo_and_cjk_ideographs_are_split()
    {
        Encoder.Encode("한").InputIds.Should().Equal(Single("ᄒ", "##ᅡ", "##ᆫ"));
        Encoder.Encode("中文").InputIds.Should().Equal(Single("中", "文"));
    }

    [Fact]
    public void Special_tokens_in_the_text_are_matched_case_sensitively_before_lowercasing()
    {
        Encoder.Encode("[CLS] x [cls]").InputIds.Should().Equal(
            Cls, Cls, BertVocab.Id("x"), BertVocab.Id("["), BertVocab.Id("cl"), BertVocab.Id("##s"), BertVocab.Id("]"), Sep);
    }

    [Fact]
    public void A_pair_is_cls_a_sep_b_sep_with_type_one_for_the_second_segment()
    {
        var encoded = Encoder.Encode("Hello", "world!");

        encoded.InputIds.Should().Equal(Cls, 7592, Sep, 2088, 999, Sep);
        encoded.TokenTypeIds.Should().Equal(0, 0, 0, 1, 1, 1);
    }

    [Fact]
    public void Null_or_empty_text_gives_the_special_tokens_alone()
    {
        Encoder.Encode(null).InputIds.Should().Equal(Cls, Sep);
        Encoder.Encode("").InputIds.Should().Equal(Cls, Sep);
        Encoder.Encode("   \n ").InputIds.Should().Equal(Cls, Sep);
        Encoder.Encode("hi", null).InputIds.Should().Equal(Single("hi"));
        var emptyPair = Encoder.Encode("", "");
        emptyPair.InputIds.Should().Equal(Cls, Sep, Sep);
        emptyPair.TokenTypeIds.Should().Equal(0, 0, 1);
    }

    [Fact]
    public void A_long_text_is_truncated_to_exactly_max_length_ending_in_sep()
    {
        var encoder = TextEncoders.FromFolder(SharedData.BertTokenizer, Config, maxLength: 8);

        var encoded = encoder.Encode("the quick brown fox jumps over the lazy dog");

        encoded.InputIds.Should().Equal(Single("the", "quick", "brown", "fox", "jumps", "over"));
        encoded.Length.Should().Be(8);
    }

    [Fact]
    public void Truncation_keeps_the_first_pieces_of_a_word_cut_in_the_middle()
    {
        var encoder = TextEncoders.FromFolder(SharedData.BertTokenizer, Config, maxLength: 4);

        encoder.Encode("unaffable").InputIds.Should().Equal(Single("una", "##ffa"));
    }

    [Theory]
    // budget = 11 - 3 = 8 tokens for the two texts
    [InlineData(10, 2, 6, 2)]  // the shorter text is kept whole, the longer takes the rest
    [InlineData(2, 10, 2, 6)]
    [InlineData(5, 5, 4, 4)]   // both over half: half each
    [InlineData(6, 5, 4, 4)]
    [InlineData(4, 4, 4, 4)]   // fits
    public void Pairs_are_truncated_longest_first(int firstWords, int secondWords, int keptFirst, int keptSecond)
    {
        var encoder = TextEncoders.FromFolder(SharedData.BertTokenizer, Config, maxLength: 11);
        string Words(int n, string word) => string.Join(" ", Enumerable.Repeat(word, n));

        var encoded = encoder.Encode(Words(firstWords, "a"), Words(secondWords, "b"));

        int a = BertVocab.Id("a"), b = BertVocab.Id("b");
        encoded.InputIds.Should().Equal([Cls, .. Enumerable.Repeat(a, keptFirst), Sep, .. Enumerable.Repeat(b, keptSecond), Sep]);
        encoded.TokenTypeIds.Should().Equal([.. Enumerable.Repeat(0, keptFirst + 2), .. Enumerable.Repeat(1, keptSecond + 1)]);
    }

    [Theory]
    // budget = 10 - 3 = 7 (odd): when both must be cut the longer text keeps the extra token, the second one on a tie
    [InlineData(5, 4, 4, 3)]
    [InlineData(4, 5, 3, 4)]
    [InlineData(5, 5, 3, 4)]
    [InlineData(900, 800, 4, 3)]
    [InlineData(800, 900, 3, 4)]
    [InlineData(900, 900, 3, 4)]
    public void When_both_texts_are_cut_the_odd_token_goes_like_in_hugging_face_tokenizers(int firstWords, int secondWords, int keptFirst, int keptSecond)
    {
        var encoder = TextEncoders.FromFolder(SharedData.BertTokenizer, Config, maxLength: 10);
        string Words(int n, string word) => string.Join(" ", Enumerable.Repeat(word, n));

        var encoded = encoder.Encode(Words(firstWords, "a"), Words(secondWords, "b"));

        int a = BertVocab.Id("a"), b = BertVocab.Id("b");
        encoded.InputIds.Should().Equal([Cls, .. Enumerable.Repeat(a, keptFirst), Sep, .. Enumerable.Repeat(b, keptSecond), Sep]);
    }

    [Fact]
    public void Vocab_txt_and_tokenizer_json_give_identical_ids_on_real_sentences()
    {
        using var vocabOnly = new TempDir();
        File.Copy(Path.Combine(SharedData.BertTokenizer, "vocab.txt"), vocabOnly.File("vocab.txt"));
        File.Copy(Path.Combine(SharedData.BertTokenizer, "tokenizer_config.json"), vocabOnly.File("tokenizer_config.json"));
        using var jsonOnly = new TempDir();
        File.Copy(Path.Combine(SharedData.BertTokenizer, "tokenizer.json"), jsonOnly.File("tokenizer.json"));
        var fromVocab = TextEncoders.FromFolder(vocabOnly.Path, Config, maxLength: 64);
        var fromJson = TextEncoders.FromFolder(jsonOnly.Path, Config, maxLength: 64);
        ((WordPieceTextEncoder)fromVocab).Source.Should().EndWith("vocab.txt");
        ((WordPieceTextEncoder)fromJson).Source.Should().EndWith("tokenizer.json");
        var sentences = File.ReadLines(SharedData.Data("sst2", "dev.tsv")).Skip(1).Take(300).Select(l => l.Split('\t')[1]).ToList();
        sentences.Should().HaveCount(300);

        for (int i = 0; i < sentences.Count; i++)
        {
            var a = fromVocab.Encode(sentences[i]);
            var b = fromJson.Encode(sentences[i]);
            b.InputIds.Should().Equal(a.InputIds, "sentence {0}: {1}", i, sentences[i]);
            var pairA = fromVocab.Encode(sentences[i], sentences[(i + 1) % sentences.Count]);
            fromJson.Encode(sentences[i], sentences[(i + 1) % sentences.Count]).Should().BeEquivalentTo(pairA);
            a.InputIds.Should().NotContain(Unk, "SST-2 sentences are plain lowercase English: {0}", sentences[i]);
        }
    }

    [Fact]
    public void A_real_sentence_gets_the_expected_word_ids()
    {
        Encoder.Encode("one long string of cliches .").InputIds.Should().Equal(
            Single("one", "long", "string", "of", "cl", "##iche", "##s", "."));
    }

    [Fact]
    public void Tokenizer_config_settings_are_honoured_for_vocab_txt()
    {
        using var cased = new TempDir();
        File.Copy(Path.Combine(SharedData.BertTokenizer, "vocab.txt"), cased.File("vocab.txt"));
        File.WriteAllText(cased.File("tokenizer_config.json"), """{"do_lower_case": false}""");
        using var keepAccents = new TempDir();
        File.Copy(Path.Combine(SharedData.BertTokenizer, "vocab.txt"), keepAccents.File("vocab.txt"));
        File.WriteAllText(keepAccents.File("tokenizer_config.json"), """{"do_lower_case": true, "strip_accents": false}""");

        // bert-base-uncased has no upper-case pieces, so an un-lowercased "Hello" cannot be spelled.
        TextEncoders.FromFolder(cased.Path, Config).Encode("Hello hello").InputIds.Should().Equal(Cls, Unk, BertVocab.Id("hello"), Sep);
        // "café" keeps its accent: "caf" matches but "##é" does not, so the word is [UNK].
        TextEncoders.FromFolder(keepAccents.Path, Config).Encode("Café cafe").InputIds.Should().Equal(Cls, Unk, BertVocab.Id("cafe"), Sep);
    }

    [Fact]
    public void Distilbert_uses_the_same_wordpiece_tokenizer()
    {
        var distil = TextEncoders.FromFolder(SharedData.BertTokenizer, TransformerConfig.Load(SharedData.Config("distilbert-base-uncased.json")));

        distil.Should().BeOfType<WordPieceTextEncoder>();
        distil.MaxLength.Should().Be(512);
        distil.Encode("Hello, world!").InputIds.Should().Equal(101, 7592, 1010, 2088, 999, 102);
    }

    [Fact]
    public void Encoding_from_several_threads_gives_the_same_ids_as_one_thread()
    {
        var sentences = File.ReadLines(SharedData.Data("sst2", "dev.tsv")).Skip(1).Select(l => l.Split('\t')[1]).ToArray();
        var sequential = sentences.Select(s => Encoder.Encode(s).InputIds).ToArray();

        var parallel = new int[sentences.Length][];
        Parallel.For(0, sentences.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => parallel[i] = Encoder.Encode(sentences[i]).InputIds);

        for (int i = 0; i < sentences.Length; i++) parallel[i].Should().Equal(sequential[i]);
    }
}
