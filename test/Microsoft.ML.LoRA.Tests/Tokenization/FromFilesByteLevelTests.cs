using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Tokenization;

namespace Microsoft.ML.LoRA.Tests.Tokenization;

/// <summary>
/// Llama-3 and Qwen2 tokenization (<see cref="TokenizerKind.FromFiles"/>) on <see cref="ToyRegexByteLevelBpe"/>:
/// tokenizer.json's regex Split, byte-level symbols (byte b = id b; Ġ is the space, 32), BPE by merge rank.
/// </summary>
public class FromFilesByteLevelTests
{
    static readonly TransformerConfig Llama3 = ToyRegexByteLevelBpe.Config(qwen2: false);
    static readonly TransformerConfig Qwen2 = ToyRegexByteLevelBpe.Config(qwen2: true);
    const int BeginOfText = 269, EndOfText = 270;
    const int QwenEndOfText = 269, ImStart = 270, ImEnd = 271;

    static ITextEncoder Load(TempDir dir, bool qwen2, int? maxLength = null, bool ignoreMerges = true, string? pattern = null)
    {
        ToyRegexByteLevelBpe.WriteTokenizerJson(dir.Path, qwen2, pattern, ignoreMerges);
        if (qwen2) ToyRegexByteLevelBpe.WriteQwen2TokenizerConfig(dir.Path);
        else ToyRegexByteLevelBpe.WriteLlama3TokenizerConfig(dir.Path);
        return TextEncoders.FromFolder(dir.Path, qwen2 ? Qwen2 : Llama3, maxLength);
    }

    [Fact]
    public void Llama3_puts_begin_of_text_first_and_merges_each_split_piece()
    {
        using var dir = new TempDir();
        var encoder = Load(dir, qwen2: false);

        // Split: "Hellos", " world". "Hellos" is not in the vocabulary, so it is merged: H e l l o s; H+e (rank 5),
        // l+l (6), He+ll (7), Hell+o (8) -> Hello(264) s(115). "Ġworld" is in the vocabulary: 260 whole (ignore_merges).
        encoder.Encode("Hellos world").InputIds.Should().Equal(BeginOfText, 264, 's', 260);
        encoder.Encode("Hello world").InputIds.Should().Equal(BeginOfText, 264, 260);
    }

    [Fact]
    public void Ignore_merges_takes_a_word_found_whole_in_the_vocabulary()
    {
        using var withIgnore = new TempDir();
        using var without = new TempDir();

        // " good" is one split piece, "Ġgood" (268) is in the vocabulary but no merge builds it.
        Load(withIgnore, qwen2: false).Encode(" good").InputIds.Should().Equal(BeginOfText, 268);
        Load(without, qwen2: false, ignoreMerges: false).Encode(" good").InputIds.Should().Equal(BeginOfText, ' ', 'g', 'o', 'o', 'd');
    }

    [Fact]
    public void A_character_outside_the_bmp_counts_as_one_character_in_the_split()
    {
        using var dir = new TempDir();
        var encoder = Load(dir, qwen2: false);

        // 🙂 (F0 9F 99 82) is one code point, not a letter: [^\r\n\p{L}\p{N}]?\p{L}+ takes it with "hi" as one piece, so
        // its last byte Ĥ (0x82) merges with h (rank 10): F0 9F 99 then "Ĥh" (266), then i. Split as two UTF-16
        // surrogates it would end up a piece of its own and 0x82 would stay alone.
        encoder.Encode("🙂hi").InputIds.Should().Equal(BeginOfText, 0xF0, 0x9F, 0x99, 266, 'i');
        // A letter outside the BMP (𝐀, U+1D400) is a letter: "a𝐀b" is one piece of five bytes.
        encoder.Encode("a𝐀b").InputIds.Should().Equal(BeginOfText, 'a', 0xF0, 0x9D, 0x90, 0x80, 'b');
    }

    [Fact]
    public void Punctuation_takes_the_line_break_after_it_and_digits_go_in_threes()
    {
        using var dir = new TempDir();
        var encoder = Load(dir, qwen2: false);

        // "Hi", ".\n" ( ?[^\s\p{L}\p{N}]+[\r\n]*), "Hi": ".Ċ" merges (rank 11) to 267.
        encoder.Encode("Hi.\nHi").InputIds.Should().Equal(BeginOfText, 'H', 'i', 267, 'H', 'i');
        // \p{N}{1,3}: "123" then "45"; 1+2 (rank 9) -> 265.
        encoder.Encode("12345").InputIds.Should().Equal(BeginOfText, 265, '3', '4', '5');
    }

    [Fact]
    public void Llama3_pairs_added_tokens_empty_text_and_padding()
    {
        using var dir = new TempDir();
        var encoder = (FromFilesTextEncoder)Load(dir, qwen2: false);

        var pair = encoder.Encode("Hello", "Hello");
        pair.InputIds.Should().Equal(BeginOfText, 264, BeginOfText, 264);
        pair.TokenTypeIds.Should().Equal(0, 0, 1, 1);
        encoder.Encode("<|end_of_text|>Hello").InputIds.Should().Equal(BeginOfText, EndOfText, 264);
        encoder.Encode("").InputIds.Should().Equal(BeginOfText);
        encoder.PadTokenId.Should().Be(EndOfText, "Llama-3 names no pad token");
        encoder.PadTokenIsEndOfSequence.Should().BeTrue();
        encoder.MaskTokenId.Should().BeNull();
    }

    [Fact]
    public void Qwen2_adds_no_special_tokens_and_pads_with_endoftext()
    {
        using var dir = new TempDir();
        var encoder = (FromFilesTextEncoder)Load(dir, qwen2: true);

        encoder.Encode("Hello world").InputIds.Should().Equal(264, 260);
        // "world" without a space is not in the vocabulary: o+r (1), l+d (3) -> w or ld.
        var pair = encoder.Encode("Hello", "world");
        pair.InputIds.Should().Equal(264, 'w', 257, 259);
        pair.TokenTypeIds.Should().Equal(0, 1, 1, 1);
        encoder.Encode("<|im_start|>Hello<|im_end|>").InputIds.Should().Equal(ImStart, 264, ImEnd);
        encoder.PadTokenId.Should().Be(QwenEndOfText);
        encoder.PadTokenIsEndOfSequence.Should().BeFalse();
        // An example needs one token: <|endoftext|> stands for the empty text.
        encoder.Encode("").InputIds.Should().Equal(QwenEndOfText);
    }

    [Fact]
    public void Qwen2_composes_with_nfc_and_splits_every_digit()
    {
        using var dir = new TempDir();
        var encoder = Load(dir, qwen2: true);

        // NFC turns e + U+0301 into é (C3 A9) before the split; without it U+0301 would be a piece of its own.
        encoder.Encode("cafe\u0301").InputIds.Should().Equal('c', 'a', 'f', 0xC3, 0xA9);
        encoder.Encode("café").InputIds.Should().Equal('c', 'a', 'f', 0xC3, 0xA9);
        // \p{N}: one digit per piece, so 1 and 2 never meet to merge.
        encoder.Encode("12345").InputIds.Should().Equal('1', '2', '3', '4', '5');
    }

    [Fact]
    public void Truncation_keeps_begin_of_text_and_a_long_text_gives_the_start_of_its_full_encoding()
    {
        using var dir = new TempDir();
        ToyRegexByteLevelBpe.WriteTokenizerJson(dir.Path, qwen2: false);
        var text = string.Concat(Enumerable.Repeat("Hello.\nworld. Hi.\n\n12345\tcafé 🙂hi ", 150));
        var full = TextEncoders.FromFolder(dir.Path, Llama3).Encode(text).InputIds;
        full.Length.Should().BeLessThan(8192);

        foreach (var maxLength in new[] { 1, 2, 3, 7, 20, 64, 500 })
        {
            var truncated = TextEncoders.FromFolder(dir.Path, Llama3, maxLength).Encode(text).InputIds;
            truncated.Should().Equal(full.Take(maxLength), "maxLength {0}", maxLength);
        }
    }

    [Fact]
    public void Long_texts_are_cut_only_where_the_split_pattern_allows()
    {
        using var llama3 = new TempDir();
        using var custom = new TempDir();
        ToyRegexByteLevelBpe.WriteTokenizerJson(llama3.Path, qwen2: false);
        ToyRegexByteLevelBpe.WriteTokenizerJson(custom.Path, qwen2: false, pattern: @"\p{L}+ ?|[^\p{L}]");
        static TokenizerJsonPipeline Pipeline(string folder)
        {
            var path = Path.Combine(folder, "tokenizer.json");
            return TokenizerJsonPipeline.Load(new TokenizerJsonReader((System.Text.Json.Nodes.JsonObject)System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!, path));
        }

        // Llama-3 joins punctuation with the line breaks after it, so only spaces and tabs are safe cut points; a
        // pattern this library has not checked (here one whose words take the space after them) gets none.
        Pipeline(llama3.Path).CutBefore.Should().Be(" \t");
        Pipeline(custom.Path).CutBefore.Should().BeEmpty();
        var text = string.Concat(Enumerable.Repeat("Hello world ", 400));
        var full = TextEncoders.FromFolder(custom.Path, Llama3).Encode(text).InputIds;
        TextEncoders.FromFolder(custom.Path, Llama3, maxLength: 5).Encode(text).InputIds.Should().Equal(full.Take(5));
    }

    [Fact]
    public void A_lone_surrogate_is_read_as_a_replacement_character()
    {
        using var dir = new TempDir();
        var encoder = Load(dir, qwen2: false);

        // U+FFFD is EF BF BD.
        encoder.Encode("a\uD800").InputIds.Should().Equal(BeginOfText, 'a', 0xEF, 0xBF, 0xBD);
    }
}
