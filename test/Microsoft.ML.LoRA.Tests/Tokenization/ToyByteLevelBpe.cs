using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Microsoft.ML.LoRA.Tests.Tokenization;

/// <summary>
/// A tiny byte-level BPE tokenizer written to disk for tests: GPT-2's 256 byte symbols (bytes_to_unicode) plus a few
/// merges, in RoBERTa layout (&lt;s&gt; &lt;pad&gt; &lt;/s&gt; &lt;unk&gt; first, &lt;mask&gt; last) or GPT-2 layout
/// (&lt;|endoftext|&gt; last).
/// </summary>
internal sealed class ToyByteLevelBpe
{
    /// <summary>Merge rules in priority order. "t h" comes after "h e", so "the" becomes t + he, not th + e.</summary>
    public static readonly (string Left, string Right)[] MergeRules =
    {
        ("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("Ã", "©"), ("Ġ", "Ã©"), ("t", "h"),
    };

    public Dictionary<string, int> Vocab { get; } = new(StringComparer.Ordinal);
    public bool IsRoberta { get; }

    ToyByteLevelBpe(bool roberta)
    {
        IsRoberta = roberta;
        if (roberta) foreach (var special in new[] { "<s>", "<pad>", "</s>", "<unk>" }) Add(special);
        for (int b = 0; b < 256; b++) Add(ByteSymbols.Of((byte)b).ToString());
        foreach (var (left, right) in MergeRules) Add(left + right);
        Add(roberta ? "<mask>" : "<|endoftext|>");
    }

    public static ToyByteLevelBpe Roberta() => new(roberta: true);
    public static ToyByteLevelBpe Gpt2() => new(roberta: false);

    void Add(string token) => Vocab.Add(token, Vocab.Count);

    public int Id(string token) => Vocab.TryGetValue(token, out var id) ? id : throw new ArgumentException($"'{token}' is not in the toy vocabulary");

    public int[] Ids(params string[] tokens) => tokens.Select(Id).ToArray();

    /// <summary>Writes vocab.json and merges.txt (with or without the "#version" header line).</summary>
    public void WriteVocabFiles(string folder, bool versionHeader = true)
    {
        File.WriteAllText(Path.Combine(folder, "vocab.json"), JsonSerializer.Serialize(Vocab), Encoding.UTF8);
        var lines = MergeRules.Select(m => $"{m.Left} {m.Right}");
        if (versionHeader) lines = lines.Prepend("#version: 0.2");
        File.WriteAllText(Path.Combine(folder, "merges.txt"), string.Join("\n", lines) + "\n", Encoding.UTF8);
    }

    /// <summary>Writes tokenizer.json the way Hugging Face tokenizers saves GPT-2 / RoBERTa.</summary>
    public void WriteTokenizerJson(string folder, bool mergesAsPairs, bool addPrefixSpace = false)
    {
        var vocab = new JsonObject();
        foreach (var (token, id) in Vocab) vocab[token] = id;
        var merges = new JsonArray(MergeRules.Select(m => mergesAsPairs ? (JsonNode)new JsonArray(m.Left, m.Right) : JsonValue.Create($"{m.Left} {m.Right}")).ToArray());
        JsonObject Added(string content, bool lstrip = false) => new()
        {
            ["id"] = Id(content), ["content"] = content, ["single_word"] = false, ["lstrip"] = lstrip, ["rstrip"] = false,
            ["normalized"] = false, ["special"] = true,
        };
        var added = IsRoberta
            ? new JsonArray(Added("<s>"), Added("<pad>"), Added("</s>"), Added("<unk>"), Added("<mask>", lstrip: true))
            : new JsonArray(Added("<|endoftext|>"));
        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = addPrefixSpace, ["trim_offsets"] = true, ["use_regex"] = true },
            ["post_processor"] = IsRoberta
                ? new JsonObject
                {
                    ["type"] = "RobertaProcessing", ["sep"] = new JsonArray("</s>", Id("</s>")), ["cls"] = new JsonArray("<s>", Id("<s>")),
                    ["trim_offsets"] = true, ["add_prefix_space"] = addPrefixSpace,
                }
                : new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = false, ["use_regex"] = true },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = "", ["end_of_word_suffix"] = "",
                ["fuse_unk"] = false, ["byte_fallback"] = false, ["vocab"] = vocab, ["merges"] = merges,
            },
        };
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), root.ToJsonString(), Encoding.UTF8);
    }
}

/// <summary>GPT-2's bytes_to_unicode: printable bytes map to themselves, the other 68 to U+0100 onwards in byte order.</summary>
internal static class ByteSymbols
{
    static readonly char[] Table = Build();

    static char[] Build()
    {
        var table = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            table[b] = printable ? (char)b : (char)next++;
        }
        return table;
    }

    public static char Of(byte b) => Table[b];

    /// <summary>The byte symbols of a text's UTF-8 bytes.</summary>
    public static string Of(string text) => string.Concat(Encoding.UTF8.GetBytes(text).Select(b => Table[b]));
}
