using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Tokenization;

/// <summary>
/// A tiny Llama-3 / Qwen2-style tokenizer.json: byte-level BPE after a regex Split pre-tokenizer
/// (Sequence[Split(pattern, Isolated), ByteLevel(use_regex false)]). Ids: byte b's symbol (GPT-2's alphabet, see
/// <see cref="ByteSymbols"/>) is id b, the merged tokens follow in merge order (256..267), then "Ġgood" (268, which no
/// merge builds), then the special tokens: Llama-3 &lt;|begin_of_text|&gt; 269, &lt;|end_of_text|&gt; 270; Qwen2
/// &lt;|endoftext|&gt; 269, &lt;|im_start|&gt; 270, &lt;|im_end|&gt; 271.
/// </summary>
internal static class ToyRegexByteLevelBpe
{
    public const string Llama3Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    public const string Qwen2Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>Merge rules in rank order (byte symbols: Ġ = space, Ċ = newline, Ĥ = byte 0x82).</summary>
    public static readonly (string Left, string Right)[] Merges =
    [
        ("Ġ", "w"),         // 256 Ġw
        ("o", "r"),         // 257 or
        ("Ġw", "or"),       // 258 Ġwor
        ("l", "d"),         // 259 ld
        ("Ġwor", "ld"),     // 260 Ġworld
        ("H", "e"),         // 261 He
        ("l", "l"),         // 262 ll
        ("He", "ll"),       // 263 Hell
        ("Hell", "o"),      // 264 Hello
        ("1", "2"),         // 265 12
        ("Ĥ", "h"),         // 266 Ĥh (the last byte of 🙂 with the h after it)
        (".", "Ċ"),         // 267 .Ċ
    ];

    public static readonly string[] Llama3Specials = ["<|begin_of_text|>", "<|end_of_text|>"];
    public static readonly string[] Qwen2Specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

    public static Dictionary<string, int> Vocab(bool qwen2)
    {
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int b = 0; b < 256; b++) vocab[ByteSymbols.Of((byte)b).ToString()] = b;
        foreach (var (left, right) in Merges) vocab[left + right] = vocab.Count;
        vocab["Ġgood"] = vocab.Count;
        foreach (var special in qwen2 ? Qwen2Specials : Llama3Specials) vocab[special] = vocab.Count;
        return vocab;
    }

    public static TransformerConfig Config(bool qwen2) =>
        TransformerConfig.Load(SharedData.Config("gpt2.json")) with
        {
            ModelType = qwen2 ? "qwen2" : "llama", Tokenizer = TokenizerKind.FromFiles, VocabSize = Vocab(qwen2).Count, MaxPositions = 8192,
            MaxPositionsField = "max_position_embeddings", PositionOffset = 0, PadTokenId = null, BosTokenId = qwen2 ? null : 269,
            EosTokenId = qwen2 ? 269 : 270, TakesTokenTypes = false,
        };

    /// <summary>
    /// Writes tokenizer.json as Llama-3's (template "&lt;|begin_of_text|&gt; $A" after a ByteLevel processor, ignore_merges)
    /// or Qwen2's (NFC normalizer, ByteLevel post-processor: no special tokens), with the given split pattern.
    /// </summary>
    public static void WriteTokenizerJson(string folder, bool qwen2, string? pattern = null, bool ignoreMerges = true)
    {
        var vocab = Vocab(qwen2);
        var vocabJson = new JsonObject();
        foreach (var (token, id) in vocab) vocabJson[token] = id;
        var specials = qwen2 ? Qwen2Specials : Llama3Specials;
        var added = new JsonArray(specials.Select(s => (JsonNode)new JsonObject
        {
            ["id"] = vocab[s], ["content"] = s, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
            ["normalized"] = false, ["special"] = true,
        }).ToArray());
        JsonObject Special(string id, int type) => new() { ["SpecialToken"] = new JsonObject { ["id"] = id, ["type_id"] = type } };
        JsonObject Sequence(string id, int type) => new() { ["Sequence"] = new JsonObject { ["id"] = id, ["type_id"] = type } };
        var byteLevelProcessor = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = false, ["use_regex"] = true };
        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = qwen2 ? new JsonObject { ["type"] = "NFC" } : null,
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject
                    {
                        ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = pattern ?? (qwen2 ? Qwen2Pattern : Llama3Pattern) },
                        ["behavior"] = "Isolated", ["invert"] = false,
                    },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = false }),
            },
            ["post_processor"] = qwen2
                ? byteLevelProcessor
                : new JsonObject
                {
                    ["type"] = "Sequence",
                    ["processors"] = new JsonArray(
                        byteLevelProcessor,
                        new JsonObject
                        {
                            ["type"] = "TemplateProcessing",
                            ["single"] = new JsonArray(Special("<|begin_of_text|>", 0), Sequence("A", 0)),
                            ["pair"] = new JsonArray(Special("<|begin_of_text|>", 0), Sequence("A", 0), Special("<|begin_of_text|>", 1), Sequence("B", 1)),
                            ["special_tokens"] = new JsonObject
                            {
                                ["<|begin_of_text|>"] = new JsonObject
                                {
                                    ["id"] = "<|begin_of_text|>", ["ids"] = new JsonArray(vocab["<|begin_of_text|>"]),
                                    ["tokens"] = new JsonArray("<|begin_of_text|>"),
                                },
                            },
                        }),
                },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null, ["end_of_word_suffix"] = null,
                ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = ignoreMerges, ["vocab"] = vocabJson,
                ["merges"] = new JsonArray(Merges.Select(m => (JsonNode)new JsonArray(m.Left, m.Right)).ToArray()),
            },
        };
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), root.ToJsonString());
    }

    /// <summary>tokenizer_config.json as Qwen2's: no bos, pad and eos &lt;|endoftext|&gt;.</summary>
    public static void WriteQwen2TokenizerConfig(string folder) =>
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"),
            """{"tokenizer_class": "Qwen2Tokenizer", "bos_token": null, "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "unk_token": null, "add_prefix_space": false}""");

    /// <summary>tokenizer_config.json as Llama-3's: the generic fast tokenizer, bos and eos named, no pad token.</summary>
    public static void WriteLlama3TokenizerConfig(string folder) =>
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"),
            """{"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"}""");
}
