using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Tokenization;

namespace Microsoft.ML.LoRA.Tests.Tokenization;

/// <summary>
/// DeBERTa-v3 tokenization (<see cref="TokenizerKind.FromFiles"/>) on <see cref="ToyDebertaTokenizer"/>: tokenizer.json's
/// Unigram model, and spm.model, which must agree. Expected ids are Viterbi paths worked
/// out by hand: the segmentation with the highest sum of piece scores (unknown characters score 10 below the lowest
/// piece, -12, so -22).
/// </summary>
public class FromFilesUnigramTests
{
    static readonly TransformerConfig Config = ToyDebertaTokenizer.Config();

    static int[] Ids(params string[] pieces) => ToyDebertaTokenizer.Ids(pieces);

    static ITextEncoder Json(TempDir dir, int? maxLength = null)
    {
        ToyDebertaTokenizer.WriteTokenizerJson(dir.Path);
        return TextEncoders.FromFolder(dir.Path, Config, maxLength);
    }

    static ITextEncoder Spm(TempDir dir, bool sideFiles = true)
    {
        ToyDebertaTokenizer.WriteSpmModel(dir.Path);
        if (sideFiles) ToyDebertaTokenizer.WriteSideFiles(dir.Path);
        return TextEncoders.FromFolder(dir.Path, Config);
    }

    [Fact]
    public void A_text_is_cls_viterbi_pieces_sep()
    {
        using var dir = new TempDir();
        var encoder = Json(dir);

        // Metaspace ("always", split): "▁hello", "▁world".
        // "▁hello": ▁he + llo = -4 - 5 = -9 beats ▁ + hello (-10), ▁hell + o (-10.5) and ▁hello (-12).
        // "▁world": ▁ + world = -3 - 4.5 = -7.5 beats ▁world (-8) and ▁wor + ld (-9).
        var encoded = encoder.Encode("hello world");

        encoded.InputIds.Should().Equal(1, 5, 6, 4, 10, 2);
        encoded.InputIds.Should().Equal(Ids("[CLS]", "▁he", "llo", "▁", "world", "[SEP]"));
        encoder.Should().BeOfType<FromFilesTextEncoder>().Which.Format.Should().Be("tokenizer.json Unigram");
    }

    [Fact]
    public void A_pair_is_cls_a_sep_b_sep_with_b_and_its_sep_type_one()
    {
        using var dir = new TempDir();
        var encoder = Json(dir);

        var encoded = encoder.Encode("hello", "world");

        encoded.InputIds.Should().Equal(Ids("[CLS]", "▁he", "llo", "[SEP]", "▁", "world", "[SEP]"));
        encoded.TokenTypeIds.Should().Equal(0, 0, 0, 0, 1, 1, 1);
    }

    [Fact]
    public void Unknown_characters_in_a_row_become_one_unk()
    {
        using var dir = new TempDir();
        var encoder = Json(dir);

        // "▁h€€o": no piece starts with €, so each € is an unknown node (-22); the best path is ▁ h € € o and the two
        // unknown nodes are fused into one [UNK].
        encoder.Encode("h€€o").InputIds.Should().Equal(Ids("[CLS]", "▁", "h", "[UNK]", "o", "[SEP]"));
    }

    [Fact]
    public void The_normalizer_strips_applies_the_charsmap_and_collapses_spaces()
    {
        using var dir = new TempDir();
        var encoder = Json(dir);
        var expected = encoder.Encode("hello world").InputIds;

        encoder.Encode("\uFF48ello world").InputIds.Should().Equal(expected, "the charsmap maps fullwidth ｈ to h");
        encoder.Encode("hello\u00A0\u00A0world").InputIds.Should().Equal(expected, "no-break spaces become spaces, then runs of spaces one");
        encoder.Encode("  hello   world  ").InputIds.Should().Equal(expected, "Strip, then Replace(\" {2,}\", \" \")");
    }

    [Fact]
    public void Mask_is_kept_whole_and_pad_and_mask_ids_come_from_the_special_tokens()
    {
        using var dir = new TempDir();
        var encoder = Json(dir);

        encoder.Encode("hello [MASK]").InputIds.Should().Equal(Ids("[CLS]", "▁he", "llo", "[MASK]", "[SEP]"));
        encoder.MaskTokenId.Should().Be(ToyDebertaTokenizer.Mask);
        encoder.PadTokenId.Should().Be(ToyDebertaTokenizer.Pad);
        ((FromFilesTextEncoder)encoder).PadTokenIsEndOfSequence.Should().BeFalse();
        encoder.SpecialTokenIds.Should().BeEquivalentTo([0, 1, 2, 3, 21]);
    }

    [Fact]
    public void Truncation_keeps_cls_and_sep_and_cuts_the_longest_text_first()
    {
        using var dir = new TempDir();
        var single = Json(dir, maxLength: 4);
        var pairs = TextEncoders.FromFolder(dir.Path, Config, maxLength: 6);

        single.Encode("hello world").InputIds.Should().Equal(Ids("[CLS]", "▁he", "llo", "[SEP]"));
        // Budget 6 - 3 = 3 for 4 + 2 tokens: the shorter keeps 1, the longer 2.
        var pair = pairs.Encode("hello world", "world");
        pair.InputIds.Should().Equal(Ids("[CLS]", "▁he", "llo", "[SEP]", "▁", "[SEP]"));
        pair.TokenTypeIds.Should().Equal(0, 0, 0, 0, 1, 1);
        single.Encode("").InputIds.Should().Equal(Ids("[CLS]", "[SEP]"));
    }

    [Fact]
    public void A_max_length_with_no_room_for_cls_and_sep_is_rejected()
    {
        using var dir = new TempDir();
        ToyDebertaTokenizer.WriteTokenizerJson(dir.Path);

        var act = () => TextEncoders.FromFolder(dir.Path, Config, maxLength: 1);

        act.Should().Throw<ArgumentOutOfRangeException>().Which.Message.Should().Contain("at least 2 tokens");
    }

    [Fact]
    public void Spm_model_gives_the_same_ids_as_tokenizer_json()
    {
        using var jsonDir = new TempDir();
        using var spmDir = new TempDir();
        var json = Json(jsonDir);
        var spm = (FromFilesTextEncoder)Spm(spmDir);

        spm.Format.Should().Be("SentencePiece Unigram");
        spm.Source.Should().EndWith("spm.model");
        string[] texts = ["hello world", "h€€o", "\uFF48ello world", "hello\u00A0\u00A0world", "  hello   world  ", "hello [MASK]", "world", "", "wwhello"];
        foreach (var text in texts)
        {
            spm.Encode(text).Should().BeEquivalentTo(json.Encode(text), "text: {0}", text);
            spm.Encode(text, "hello").Should().BeEquivalentTo(json.Encode(text, "hello"), "pair with: {0}", text);
        }
        spm.PadTokenId.Should().Be(json.PadTokenId);
        spm.MaskTokenId.Should().Be(json.MaskTokenId);
    }

    [Fact]
    public void Spm_model_alone_takes_debertas_defaults_and_gives_mask_the_next_id()
    {
        using var dir = new TempDir();
        var encoder = Spm(dir, sideFiles: false);

        // No tokenizer_config.json: the model type (deberta-v2) gives DebertaV2Tokenizer's [CLS]/[SEP]/[PAD]/[MASK];
        // [MASK] is not one of the model's 21 pieces, so it gets id 21, as transformers adds it.
        encoder.Encode("hello [MASK]").InputIds.Should().Equal(Ids("[CLS]", "▁he", "llo", "[MASK]", "[SEP]"));
        encoder.MaskTokenId.Should().Be(21);
        encoder.PadTokenId.Should().Be(0);
    }

    [Fact]
    public void Tokenizer_json_wins_over_spm_model()
    {
        using var dir = new TempDir();
        ToyDebertaTokenizer.WriteTokenizerJson(dir.Path);
        // A model file without the charsmap would read fullwidth ｈ as unknown.
        var plain = new SentencePieceModelWriter
        {
            ModelType = SentencePieceModelWriter.Unigram, UnkId = 3, BosId = 1, EosId = 2, PadId = 0,
            UnkPiece = "[UNK]", BosPiece = "[CLS]", EosPiece = "[SEP]", PadPiece = "[PAD]",
        };
        plain.Pieces.AddRange(ToyDebertaTokenizer.SentencePiece().Pieces);
        plain.Write(dir.File("spm.model"));

        var encoder = (FromFilesTextEncoder)TextEncoders.FromFolder(dir.Path, Config);

        encoder.Source.Should().EndWith("tokenizer.json");
        encoder.Encode("\uFF48ello").InputIds.Should().Equal(encoder.Encode("hello").InputIds);
    }

    [Fact]
    public void A_damaged_spm_model_is_reported_with_the_file_and_the_field()
    {
        using var dir = new TempDir();
        var bytes = ToyDebertaTokenizer.SentencePiece().ToBytes();
        File.WriteAllBytes(dir.File("spm.model"), bytes[..(bytes.Length - 5)]);

        var act = () => TextEncoders.FromFolder(dir.Path, Config);

        act.Should().Throw<CheckpointFormatException>().Which.Message.Should().Contain("spm.model").And.Contain("normalizer_spec");
    }

    [Fact]
    public void A_word_model_is_refused_naming_its_type()
    {
        using var dir = new TempDir();
        var word = new SentencePieceModelWriter { ModelType = 3 };
        word.Pieces.AddRange(ToyDebertaTokenizer.SentencePiece().Pieces);
        word.Write(dir.File("spm.model"));

        var act = () => TextEncoders.FromFolder(dir.Path, Config);

        act.Should().Throw<CheckpointFormatException>().Which.Message.Should().Contain("spm.model").And.Contain("WORD");
    }

    [Fact]
    public void A_tokenizer_json_model_of_another_type_is_reported_with_the_field()
    {
        using var dir = new TempDir();
        File.Copy(Path.Combine(SharedData.BertTokenizer, "tokenizer.json"), dir.File("tokenizer.json"));

        var act = () => TextEncoders.FromFolder(dir.Path, Config);

        act.Should().Throw<CheckpointFormatException>().Which.Message.Should().Contain("tokenizer.json").And.Contain("model.type").And.Contain("WordPiece");
    }

    [Fact]
    public void An_unsupported_pre_tokenizer_is_reported_with_its_path_in_the_file()
    {
        using var dir = new TempDir();
        ToyDebertaTokenizer.WriteTokenizerJson(dir.Path);
        var path = dir.File("tokenizer.json");
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"type\":\"Metaspace\",\"replacement\"", "\"type\":\"Whitespace\",\"replacement\""));

        var act = () => TextEncoders.FromFolder(dir.Path, Config);

        act.Should().Throw<CheckpointFormatException>().Which.Message.Should().Contain("pre_tokenizer.pretokenizers[0]").And.Contain("Whitespace");
    }
}
