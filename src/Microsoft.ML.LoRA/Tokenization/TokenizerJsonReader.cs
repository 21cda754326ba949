using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;

namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// Reads the parts of a Hugging Face <c>tokenizer.json</c> this library uses; every error names the file and the field.
/// </summary>
internal sealed class TokenizerJsonReader
{
    public TokenizerJsonReader(JsonObject root, string path)
    {
        Root = root;
        Path = path;
        Model = root["model"] as JsonObject ?? throw Problem("has no 'model' object");
    }

    public JsonObject Root { get; }
    public string Path { get; }
    public JsonObject Model { get; }

    /// <summary><c>model.type</c> ("WordPiece", "BPE", ...); a BPE model may omit it.</summary>
    public string ModelType => String(Model, "type") ?? (Model["merges"] is not null ? "BPE" : "(missing)");

    public CheckpointFormatException Problem(string problem) => new(Path, problem);

    /// <summary><c>model.vocab</c>: token -> id.</summary>
    public Dictionary<string, int> Vocab()
    {
        if (Model["vocab"] is not JsonObject vocab) throw Problem("model.vocab is not an object of token -> id");
        var result = new Dictionary<string, int>(vocab.Count, StringComparer.Ordinal);
        foreach (var (token, value) in vocab)
        {
            if (value is not JsonValue v || !v.TryGetValue<int>(out var id) || id < 0)
                throw Problem($"model.vocab entry '{token}' has no non-negative integer id");
            result[token] = id;
        }
        if (result.Count == 0) throw Problem("model.vocab is empty");
        return result;
    }

    /// <summary><c>model.merges</c> as "a b" strings, whether stored as strings or as [a, b] pairs.</summary>
    public List<string> Merges()
    {
        if (Model["merges"] is not JsonArray merges) throw Problem("model.merges is not an array");
        var result = new List<string>(merges.Count);
        for (int i = 0; i < merges.Count; i++)
        {
            var node = merges[i];
            if (node is JsonValue v && v.TryGetValue<string>(out var line))
            {
                result.Add(line);
            }
            else if (node is JsonArray { Count: 2 } pair && pair[0] is JsonValue a && a.TryGetValue<string>(out var left)
                     && pair[1] is JsonValue b && b.TryGetValue<string>(out var right))
            {
                if (left.Contains(' ') || right.Contains(' '))
                    throw Problem($"model.merges[{i}] has a token with a space ({node.ToJsonString()}), which byte-level BPE never produces");
                result.Add(left + " " + right);
            }
            else
            {
                throw Problem($"model.merges[{i}] is neither \"a b\" nor [\"a\", \"b\"] ({node?.ToJsonString() ?? "null"})");
            }
        }
        return result;
    }

    /// <summary>
    /// <c>model.merges</c> as (left, right) pairs, whether stored as "a b" strings (exactly one space, as Hugging Face
    /// reads them) or as [a, b] pairs (whose tokens may hold spaces).
    /// </summary>
    public List<(string Left, string Right)> MergePairs()
    {
        if (Model["merges"] is not JsonArray merges) throw Problem("model.merges is not an array");
        var result = new List<(string, string)>(merges.Count);
        for (int i = 0; i < merges.Count; i++)
        {
            var node = merges[i];
            if (node is JsonValue v && v.TryGetValue<string>(out var line))
            {
                var parts = line.Split(' ');
                if (parts.Length != 2) throw Problem($"model.merges[{i}] is not two tokens separated by one space (\"{line}\")");
                result.Add((parts[0], parts[1]));
            }
            else if (node is JsonArray { Count: 2 } pair && pair[0] is JsonValue a && a.TryGetValue<string>(out var left)
                     && pair[1] is JsonValue b && b.TryGetValue<string>(out var right))
            {
                result.Add((left, right));
            }
            else
            {
                throw Problem($"model.merges[{i}] is neither \"a b\" nor [\"a\", \"b\"] ({node?.ToJsonString() ?? "null"})");
            }
        }
        return result;
    }

    /// <summary>A Unigram <c>model.vocab</c>: [piece, score] pairs in id order.</summary>
    public List<(string Piece, double Score)> UnigramVocab()
    {
        if (Model["vocab"] is not JsonArray vocab) throw Problem("model.vocab is not an array of [piece, score] pairs (a Unigram vocabulary)");
        var result = new List<(string, double)>(vocab.Count);
        for (int i = 0; i < vocab.Count; i++)
        {
            if (vocab[i] is JsonArray { Count: 2 } pair && pair[0] is JsonValue p && p.TryGetValue<string>(out var piece)
                && pair[1] is JsonValue s && s.TryGetValue<double>(out var score) && double.IsFinite(score))
                result.Add((piece, score));
            else
                throw Problem($"model.vocab[{i}] is not a [piece, score] pair ({vocab[i]?.ToJsonString() ?? "null"})");
        }
        if (result.Count == 0) throw Problem("model.vocab is empty");
        return result;
    }

    /// <summary>
    /// The <c>added_tokens</c> entries marked <c>"special": true</c> (ids a masked language model never masks).
    /// </summary>
    public IEnumerable<int> SpecialAddedTokenIds() =>
        (Root["added_tokens"] as JsonArray ?? new JsonArray()).OfType<JsonObject>()
            .Where(o => Bool(o, "special") == true && Int(o, "id") is not null).Select(o => Int(o, "id")!.Value);

    /// <summary>The <c>added_tokens</c> list (tokens matched in raw text before the model runs).</summary>
    public List<AddedToken> AddedTokens()
    {
        var result = new List<AddedToken>();
        if (Root["added_tokens"] is null) return result;
        if (Root["added_tokens"] is not JsonArray list) throw Problem("added_tokens is not an array");
        foreach (var node in list)
        {
            if (node is not JsonObject o || String(o, "content") is not { } content || o["id"] is not JsonValue v || !v.TryGetValue<int>(out var id))
                throw Problem($"added_tokens entry {node?.ToJsonString() ?? "null"} needs 'id' and 'content'");
            result.Add(new AddedToken(content, id, Bool(o, "lstrip") ?? false, Bool(o, "rstrip") ?? false));
        }
        return result;
    }

    /// <summary>
    /// The special tokens the post-processor adds: BertProcessing, RobertaProcessing or TemplateProcessing (also inside a
    /// Sequence). Null when there is none or it adds none (ByteLevel).
    /// </summary>
    public SpecialTokensLayout? Layout() => Layout(Root["post_processor"], "post_processor");

    SpecialTokensLayout? Layout(JsonNode? node, string field)
    {
        if (node is null) return null;
        if (node is not JsonObject processor) throw Problem($"{field} is not an object");
        string type = String(processor, "type") ?? throw Problem($"{field} has no type");
        switch (type)
        {
            case "ByteLevel":
                return null;
            case "BertProcessing":
                return SpecialTokensLayout.Bert(TokenIdPair(processor, "cls", field), TokenIdPair(processor, "sep", field));
            case "RobertaProcessing":
                return SpecialTokensLayout.Roberta(TokenIdPair(processor, "cls", field), TokenIdPair(processor, "sep", field));
            case "TemplateProcessing":
                return Template(processor, field);
            case "Sequence":
                if (processor["processors"] is not JsonArray steps) throw Problem($"{field}.processors is not an array");
                SpecialTokensLayout? found = null;
                for (int i = 0; i < steps.Count; i++)
                {
                    var layout = Layout(steps[i], $"{field}.processors[{i}]");
                    if (layout is null) continue;
                    if (found is not null) throw Problem($"{field} has more than one step adding special tokens");
                    found = layout;
                }
                return found;
            default:
                throw Problem($"{field} type '{type}' is not supported (BertProcessing, RobertaProcessing, TemplateProcessing, ByteLevel)");
        }
    }

    int TokenIdPair(JsonObject processor, string key, string field)
    {
        if (processor[key] is JsonArray { Count: 2 } pair && pair[1] is JsonValue v && v.TryGetValue<int>(out var id)) return id;
        throw Problem($"{field}.{key} is not a [token, id] pair");
    }

    /// <summary>
    /// A TemplateProcessing of the shape "prefix $A suffix" / "prefix $A middle $B suffix" where everything up to the
    /// middle has type 0 and $B and the suffix share one type.
    /// </summary>
    SpecialTokensLayout Template(JsonObject processor, string field)
    {
        var specials = processor["special_tokens"] as JsonObject ?? new JsonObject();
        var single = Parts(processor["single"], specials, $"{field}.single");
        var pair = Parts(processor["pair"], specials, $"{field}.pair");
        if (single.Sequences.Count != 1 || single.Sequences[0].Id != "A")
            throw Problem($"{field}.single must hold the sequence $A once");
        if (pair.Sequences.Count != 2 || pair.Sequences[0].Id != "A" || pair.Sequences[1].Id != "B")
            throw Problem($"{field}.pair must hold $A then $B");
        int secondType = pair.Sequences[1].TypeId;
        bool TypesFit(List<(int Id, int Type)> items, int type) => items.All(t => t.Type == type);
        // The middle tokens may carry either text's type (Llama: "<s>:0 $A:0 <s>:1 $B:1"), each its own.
        if (single.Sequences[0].TypeId != 0 || !TypesFit(single.Segments[0], 0) || !TypesFit(single.Segments[1], 0)
            || pair.Sequences[0].TypeId != 0 || !TypesFit(pair.Segments[0], 0) || !TypesFit(pair.Segments[2], secondType))
            throw Problem($"{field} uses token types this library does not lay out (supported: 0 up to the first text, one type for $B and what follows it)");
        return new SpecialTokensLayout
        {
            SinglePrefix = single.Segments[0].Select(t => t.Id).ToArray(),
            SingleSuffix = single.Segments[1].Select(t => t.Id).ToArray(),
            PairPrefix = pair.Segments[0].Select(t => t.Id).ToArray(),
            PairMiddle = pair.Segments[1].Select(t => t.Id).ToArray(),
            PairSuffix = pair.Segments[2].Select(t => t.Id).ToArray(),
            SecondSegmentTypeId = secondType,
            PairMiddleTypeIds = pair.Segments[1].Select(t => t.Type).ToArray(),
        };
    }

    /// <summary>A template split at its sequences: the special token ids (with types) before, between and after them.</summary>
    (List<(string Id, int TypeId)> Sequences, List<List<(int Id, int Type)>> Segments) Parts(JsonNode? node, JsonObject specials, string field)
    {
        if (node is not JsonArray items) throw Problem($"{field} is not an array");
        var sequences = new List<(string, int)>();
        var segments = new List<List<(int, int)>> { new() };
        foreach (var item in items)
        {
            if (item is JsonObject o && o["Sequence"] is JsonObject seq)
            {
                sequences.Add((String(seq, "id") ?? throw Problem($"{field} has a Sequence without id"), Int(seq, "type_id") ?? 0));
                segments.Add(new());
            }
            else if (item is JsonObject s && s["SpecialToken"] is JsonObject special)
            {
                string name = String(special, "id") ?? throw Problem($"{field} has a SpecialToken without id");
                if (specials[name]?["ids"] is not JsonArray ids || ids.Count == 0)
                    throw Problem($"{field} uses special token '{name}', which special_tokens does not give ids");
                foreach (var id in ids)
                {
                    if (id is not JsonValue v || !v.TryGetValue<int>(out var value)) throw Problem($"special token '{name}' has a non-integer id");
                    segments[^1].Add((value, Int(special, "type_id") ?? 0));
                }
            }
            else
            {
                throw Problem($"{field} item {item?.ToJsonString() ?? "null"} is neither a Sequence nor a SpecialToken");
            }
        }
        while (segments.Count < 3) segments.Add(new());
        return (sequences, segments);
    }

    /// <summary>The <c>padding.pad_token</c> (and id) when the file sets padding.</summary>
    public (string Token, int? Id)? Padding()
    {
        if (Root["padding"] is not JsonObject padding) return null;
        var token = String(padding, "pad_token");
        return token is null ? null : (token, Int(padding, "pad_id"));
    }

    public static string? String(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    public static bool? Bool(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue<bool>(out var b) ? b : null;

    public static int? Int(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue<int>(out var i) ? i : null;
}
