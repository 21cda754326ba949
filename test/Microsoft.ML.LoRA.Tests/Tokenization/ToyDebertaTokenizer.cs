using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Tokenization;

/// <summary>
/// A tiny DeBERTa-v3-style Unigram tokenizer, as tokenizer.json (the way transformers' DebertaV2Converter writes it:
/// Strip + Precompiled + Replace(" {2,}", " ") normalizer, Metaspace(prepend_scheme "always", split) pre-tokenizer,
/// "[CLS] $A [SEP]" / "[CLS] $A [SEP] $B [SEP]" template) and as spm.model (a Unigram ModelProto with the same pieces
/// and charsmap). [PAD] 0, [CLS] 1, [SEP] 2, [UNK] 3, the pieces below from 4, and [MASK] 21 as an added token past
/// the model's pieces (as DeBERTa-v3's [MASK] is 128000).
/// </summary>
internal static class ToyDebertaTokenizer
{
    /// <summary>Pieces after the four special ones, with their log-probabilities.</summary>
    public static readonly (string Piece, double Score)[] Pieces =
    [
        ("▁", -3.0),        // 4
        ("▁he", -4.0),      // 5
        ("llo", -5.0),      // 6
        ("▁hell", -6.0),    // 7
        ("hello", -7.0),    // 8
        ("▁hello", -12.0),  // 9
        ("world", -4.5),    // 10
        ("▁wor", -5.0),     // 11
        ("ld", -4.0),       // 12
        ("▁world", -8.0),   // 13
        ("h", -6.0),        // 14
        ("e", -6.0),        // 15
        ("l", -6.0),        // 16
        ("o", -4.5),        // 17
        ("w", -6.0),        // 18
        ("r", -6.0),        // 19
        ("d", -6.0),        // 20
    ];

    public const int Pad = 0, Cls = 1, Sep = 2, Unk = 3, Mask = 21;

    /// <summary>The charsmap's rules: fullwidth ｈ (U+FF48) to h, no-break space to space (nmt_nfkc does both).</summary>
    public static readonly Dictionary<string, string> Rules = new() { ["\uFF48"] = "h", ["\u00A0"] = " " };

    public static readonly byte[] Charsmap = CharsmapBuilder.Build(Rules);

    public static int Id(string piece) => piece switch
    {
        "[PAD]" => Pad, "[CLS]" => Cls, "[SEP]" => Sep, "[UNK]" => Unk, "[MASK]" => Mask,
        _ => 4 + Array.FindIndex(Pieces, p => p.Piece == piece) is var id && id >= 4 ? id : throw new ArgumentException(piece),
    };

    public static int[] Ids(params string[] pieces) => pieces.Select(Id).ToArray();

    /// <summary>DeBERTa-v3's config: no token types (type_vocab_size 0), pad 0, 512 positions.</summary>
    public static TransformerConfig Config() =>
        TransformerConfig.Load(SharedData.Config("bert-base-uncased.json")) with
        {
            ModelType = "deberta-v2", Tokenizer = TokenizerKind.FromFiles, VocabSize = 22, MaxPositions = 512, PositionOffset = 0,
            PadTokenId = 0, TypeVocabSize = 0, TakesTokenTypes = false,
        };

    public static void WriteTokenizerJson(string folder)
    {
        var vocab = new JsonArray(new[] { "[PAD]", "[CLS]", "[SEP]", "[UNK]" }.Select(s => (JsonNode)new JsonArray(s, 0.0))
            .Concat(Pieces.Select(p => (JsonNode)new JsonArray(p.Piece, p.Score))).ToArray());
        JsonObject Added(string content, int id) => new()
        {
            ["id"] = id, ["content"] = content, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
            ["normalized"] = false, ["special"] = true,
        };
        JsonObject Special(string id, int type) => new() { ["SpecialToken"] = new JsonObject { ["id"] = id, ["type_id"] = type } };
        JsonObject Sequence(string id, int type) => new() { ["Sequence"] = new JsonObject { ["id"] = id, ["type_id"] = type } };
        JsonObject SpecialIds(string token, int id) => new() { ["id"] = token, ["ids"] = new JsonArray(id), ["tokens"] = new JsonArray(token) };
        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = new JsonArray(Added("[PAD]", Pad), Added("[CLS]", Cls), Added("[SEP]", Sep), Added("[UNK]", Unk), Added("[MASK]", Mask)),
            ["normalizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["normalizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Strip", ["strip_left"] = true, ["strip_right"] = true },
                    new JsonObject { ["type"] = "Precompiled", ["precompiled_charsmap"] = Convert.ToBase64String(Charsmap) },
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["Regex"] = " {2,}" }, ["content"] = " " }),
            },
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(new JsonObject { ["type"] = "Metaspace", ["replacement"] = "▁", ["prepend_scheme"] = "always", ["split"] = true }),
            },
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(Special("[CLS]", 0), Sequence("A", 0), Special("[SEP]", 0)),
                ["pair"] = new JsonArray(Special("[CLS]", 0), Sequence("A", 0), Special("[SEP]", 0), Sequence("B", 1), Special("[SEP]", 1)),
                ["special_tokens"] = new JsonObject { ["[CLS]"] = SpecialIds("[CLS]", Cls), ["[SEP]"] = SpecialIds("[SEP]", Sep) },
            },
            ["decoder"] = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "▁", ["prepend_scheme"] = "always", ["split"] = true },
            ["model"] = new JsonObject { ["type"] = "Unigram", ["unk_id"] = Unk, ["vocab"] = vocab, ["byte_fallback"] = false },
        };
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), root.ToJsonString());
    }

    /// <summary>spm.model: a Unigram ModelProto with nmt_nfkc-like normalization (the toy charsmap).</summary>
    public static SentencePieceModelWriter SentencePiece()
    {
        var writer = new SentencePieceModelWriter
        {
            ModelType = SentencePieceModelWriter.Unigram, UnkId = Unk, BosId = Cls, EosId = Sep, PadId = Pad,
            UnkPiece = "[UNK]", BosPiece = "[CLS]", EosPiece = "[SEP]", PadPiece = "[PAD]",
            NormalizerName = "nmt_nfkc", Charsmap = Charsmap, AddDummyPrefix = true, RemoveExtraWhitespaces = true, EscapeWhitespaces = true,
        };
        writer.Pieces.Add(("[PAD]", 0, SentencePieceModelWriter.Control));
        writer.Pieces.Add(("[CLS]", 0, SentencePieceModelWriter.Control));
        writer.Pieces.Add(("[SEP]", 0, SentencePieceModelWriter.Control));
        writer.Pieces.Add(("[UNK]", 0, SentencePieceModelWriter.Unknown));
        foreach (var (piece, score) in Pieces) writer.Pieces.Add((piece, (float)score, SentencePieceModelWriter.Normal));
        return writer;
    }

    public static void WriteSpmModel(string folder) => SentencePiece().Write(Path.Combine(folder, "spm.model"));

    /// <summary>DeBERTa-v3's own files: tokenizer_config.json, special_tokens_map.json and added_tokens.json ([MASK]).</summary>
    public static void WriteSideFiles(string folder)
    {
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"do_lower_case": false, "vocab_type": "spm", "tokenizer_class": "DebertaV2Tokenizer"}""");
        File.WriteAllText(Path.Combine(folder, "special_tokens_map.json"),
            """{"bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}""");
        File.WriteAllText(Path.Combine(folder, "added_tokens.json"), """{"[MASK]": 21}""");
    }
}
