using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Tokenization;

/// <summary>
/// A tiny Llama-2-style tokenizer: SentencePiece BPE with byte fallback, written as tokenizer.json (the way
/// transformers' LlamaConverter writes it: BPE with byte_fallback and fuse_unk, the legacy Prepend("▁") + Replace(" ",
/// "▁") normalizer or the newer Metaspace(prepend_scheme "first", split false) pre-tokenizer, template "&lt;s&gt; $A")
/// and as tokenizer.model (a SentencePiece ModelProto whose piece scores give the same merge order).
/// Ids: &lt;unk&gt; 0, &lt;s&gt; 1, &lt;/s&gt; 2, &lt;0x00&gt;..&lt;0xFF&gt; 3..258 (so byte b is id 3 + b), then the merged
/// pieces in merge order (259..268), then the single characters (269..278).
/// </summary>
internal static class ToyLlamaTokenizer
{
    /// <summary>Merge rules, highest priority first; a merged piece's SentencePiece score is -(rank + 1).</summary>
    public static readonly (string Left, string Right)[] Merges =
    [
        ("l", "l"),         // 259 ll
        ("▁", "h"),         // 260 ▁h
        ("e", "ll"),        // 261 ell
        ("▁h", "ell"),      // 262 ▁hell
        ("▁hell", "o"),     // 263 ▁hello
        ("o", "r"),         // 264 or
        ("▁", "w"),         // 265 ▁w
        ("▁w", "or"),       // 266 ▁wor
        ("l", "d"),         // 267 ld
        ("▁", "H"),         // 268 ▁H
    ];

    /// <summary>Single characters (scores below every merged piece).</summary>
    public static readonly string[] Characters = ["▁", "h", "e", "l", "o", "w", "r", "d", "H", "i"];

    public static readonly Dictionary<string, int> Vocab = BuildVocab();

    static Dictionary<string, int> BuildVocab()
    {
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal) { ["<unk>"] = 0, ["<s>"] = 1, ["</s>"] = 2 };
        for (int b = 0; b < 256; b++) vocab[$"<0x{b:X2}>"] = 3 + b;
        foreach (var (left, right) in Merges) vocab[left + right] = vocab.Count;
        foreach (var c in Characters) vocab[c] = vocab.Count;
        return vocab;
    }

    public static int Id(string token) => Vocab[token];

    public static int[] Ids(params string[] tokens) => tokens.Select(Id).ToArray();

    /// <summary>The config of a Llama model with this vocabulary (bos 1, eos 2, no pad_token_id).</summary>
    public static TransformerConfig Config(int? padTokenId = null) =>
        TransformerConfig.Load(SharedData.Config("gpt2.json")) with
        {
            ModelType = "llama", Tokenizer = TokenizerKind.FromFiles, VocabSize = Vocab.Count, MaxPositions = 4096,
            MaxPositionsField = "max_position_embeddings", PositionOffset = 0, PadTokenId = padTokenId, BosTokenId = 1, EosTokenId = 2,
            TakesTokenTypes = false,
        };

    /// <summary>tokenizer.json as transformers writes Llama-2's: legacy (Prepend + Replace normalizer) or Metaspace.</summary>
    public static void WriteTokenizerJson(string folder, bool legacy = true)
    {
        var vocab = new JsonObject();
        foreach (var (token, id) in Vocab) vocab[token] = id;
        JsonObject Added(string content, int id) => new()
        {
            ["id"] = id, ["content"] = content, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
            ["normalized"] = false, ["special"] = true,
        };
        JsonObject Special(string id, int type) => new() { ["SpecialToken"] = new JsonObject { ["id"] = id, ["type_id"] = type } };
        JsonObject Sequence(string id, int type) => new() { ["Sequence"] = new JsonObject { ["id"] = id, ["type_id"] = type } };
        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = new JsonArray(Added("<unk>", 0), Added("<s>", 1), Added("</s>", 2)),
            ["normalizer"] = legacy
                ? new JsonObject
                {
                    ["type"] = "Sequence",
                    ["normalizers"] = new JsonArray(
                        new JsonObject { ["type"] = "Prepend", ["prepend"] = "▁" },
                        new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "▁" }),
                }
                : null,
            ["pre_tokenizer"] = legacy
                ? null
                : new JsonObject { ["type"] = "Metaspace", ["replacement"] = "▁", ["prepend_scheme"] = "first", ["split"] = false },
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(Special("<s>", 0), Sequence("A", 0)),
                ["pair"] = new JsonArray(Special("<s>", 0), Sequence("A", 0), Special("<s>", 1), Sequence("B", 1)),
                ["special_tokens"] = new JsonObject
                {
                    ["<s>"] = new JsonObject { ["id"] = "<s>", ["ids"] = new JsonArray(1), ["tokens"] = new JsonArray("<s>") },
                },
            },
            ["decoder"] = new JsonObject { ["type"] = "Sequence", ["decoders"] = new JsonArray() },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = "<unk>", ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null, ["fuse_unk"] = true, ["byte_fallback"] = true, ["ignore_merges"] = false,
                ["vocab"] = vocab,
                ["merges"] = new JsonArray(Merges.Select(m => (JsonNode)JsonValue.Create($"{m.Left} {m.Right}")).ToArray()),
            },
        };
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), root.ToJsonString());
    }

    /// <summary>
    /// tokenizer.model: the same pieces with SentencePiece's Llama settings (BPE, byte_fallback, identity normalizer,
    /// add_dummy_prefix, no whitespace removal). Merged pieces score -(rank + 1), single characters below them.
    /// </summary>
    public static SentencePieceModelWriter SentencePiece()
    {
        var writer = new SentencePieceModelWriter
        {
            ModelType = SentencePieceModelWriter.Bpe, ByteFallback = true, UnkId = 0, BosId = 1, EosId = 2, PadId = -1,
            NormalizerName = "identity", AddDummyPrefix = true, RemoveExtraWhitespaces = false, EscapeWhitespaces = true,
        };
        writer.Pieces.Add(("<unk>", 0, SentencePieceModelWriter.Unknown));
        writer.Pieces.Add(("<s>", 0, SentencePieceModelWriter.Control));
        writer.Pieces.Add(("</s>", 0, SentencePieceModelWriter.Control));
        for (int b = 0; b < 256; b++) writer.Pieces.Add(($"<0x{b:X2}>", 0, SentencePieceModelWriter.Byte));
        for (int rank = 0; rank < Merges.Length; rank++)
            writer.Pieces.Add((Merges[rank].Left + Merges[rank].Right, -(rank + 1), SentencePieceModelWriter.Normal));
        for (int i = 0; i < Characters.Length; i++)
            writer.Pieces.Add((Characters[i], -(Merges.Length + 1 + i), SentencePieceModelWriter.Normal));
        return writer;
    }

    public static void WriteTokenizerModel(string folder) => SentencePiece().Write(Path.Combine(folder, "tokenizer.model"));

    /// <summary>tokenizer_config.json as Llama-2's (LlamaTokenizer, bos added, no pad token), with the flags given.</summary>
    public static void WriteTokenizerConfig(string folder, bool addEos = false, bool? legacy = null)
    {
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"),
            "{\"tokenizer_class\": \"LlamaTokenizer\", \"add_bos_token\": true, \"add_eos_token\": " + (addEos ? "true" : "false") +
            ", \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"unk_token\": \"<unk>\", \"pad_token\": null" +
            (legacy is bool l ? ", \"legacy\": " + (l ? "true" : "false") : "") + "}");
    }
}
