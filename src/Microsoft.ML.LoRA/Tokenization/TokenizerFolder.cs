using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;

namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// The tokenizer files of one model folder, or of a model file's tokenizer entries held in memory, with the JSON ones
/// parsed on first use. Settings are looked up the way transformers does: <c>tokenizer_config.json</c> first, then
/// <c>special_tokens_map.json</c>. The readers reach the files only through this class, so where they come from does
/// not matter to them.
/// </summary>
internal sealed class TokenizerFolder
{
    readonly Dictionary<string, JsonObject?> _json = new();
    readonly IReadOnlyDictionary<string, byte[]>? _inMemory;

    public TokenizerFolder(string directory) => Directory = Path.GetFullPath(directory);

    /// <summary>
    /// Files held in memory by name (a saved model's tokenizer entries), reported as <paramref name="label"/>/name in
    /// messages.
    /// </summary>
    public TokenizerFolder(string label, IReadOnlyDictionary<string, byte[]> files)
    {
        Directory = label;
        _inMemory = files;
    }

    /// <summary>Full path of the folder (or, in memory, the label it is reported as).</summary>
    public string Directory { get; }

    public string PathOf(string fileName) => _inMemory is null ? Path.Combine(Directory, fileName) : Directory + "/" + fileName;

    public bool Has(string fileName) => _inMemory?.ContainsKey(fileName) ?? File.Exists(PathOf(fileName));

    /// <summary>The file's bytes.</summary>
    public byte[] ReadAllBytes(string fileName) => _inMemory is null ? File.ReadAllBytes(PathOf(fileName)) : Required(fileName);

    /// <summary>The file's text (UTF-8, a byte order mark skipped).</summary>
    public string ReadAllText(string fileName)
    {
        using var reader = OpenText(fileName);
        return reader.ReadToEnd();
    }

    /// <summary>The file's lines (UTF-8, a byte order mark skipped), read as they are enumerated.</summary>
    public IEnumerable<string> ReadLines(string fileName)
    {
        using var reader = OpenText(fileName);
        while (reader.ReadLine() is { } line) yield return line;
    }

    /// <summary>The file's size in bytes.</summary>
    public long Length(string fileName) => _inMemory is null ? new FileInfo(PathOf(fileName)).Length : Required(fileName).Length;

    StreamReader OpenText(string fileName) => _inMemory is null
        ? new StreamReader(PathOf(fileName), Encoding.UTF8, detectEncodingFromByteOrderMarks: true)
        : new StreamReader(new MemoryStream(Required(fileName), writable: false), Encoding.UTF8, detectEncodingFromByteOrderMarks: true);

    byte[] Required(string fileName) => _inMemory!.TryGetValue(fileName, out var bytes)
        ? bytes
        : throw new FileNotFoundException($"{PathOf(fileName)} is not among the tokenizer files", PathOf(fileName));

    /// <summary>The parsed JSON object of a file in the folder, or null when the folder lacks the file.</summary>
    public JsonObject? Json(string fileName)
    {
        if (_json.TryGetValue(fileName, out var cached)) return cached;
        var path = PathOf(fileName);
        JsonObject? result = null;
        if (Has(fileName))
        {
            JsonNode? node;
            try { node = JsonNode.Parse(ReadAllText(fileName)); }
            catch (JsonException e) { throw new CheckpointFormatException(path, $"not valid JSON ({e.Message})"); }
            result = node as JsonObject ?? throw new CheckpointFormatException(path, "is not a JSON object");
        }
        _json[fileName] = result;
        return result;
    }

    /// <summary>A boolean setting of tokenizer_config.json (null when absent or null there).</summary>
    public bool? ConfigBool(string key)
    {
        var node = Json(TokenizerFiles.TokenizerConfigJson)?[key];
        if (node is null) return null;
        if (node is JsonValue v && v.TryGetValue<bool>(out var b)) return b;
        throw new CheckpointFormatException(PathOf(TokenizerFiles.TokenizerConfigJson), $"field '{key}' is not true/false ({node.ToJsonString()})");
    }

    /// <summary>
    /// A named special token (<c>cls_token</c>, <c>pad_token</c>, ...) from tokenizer_config.json or
    /// special_tokens_map.json: its text and strip flags, or null when neither names it.
    /// </summary>
    public (string Content, bool LStrip, bool RStrip)? SpecialToken(string key)
    {
        foreach (var file in new[] { TokenizerFiles.TokenizerConfigJson, TokenizerFiles.SpecialTokensMapJson })
        {
            var node = Json(file)?[key];
            if (node is null) continue;
            return ReadTokenSpec(node, file, key);
        }
        return null;
    }

    /// <summary>
    /// Tokens a folder adds beyond the named special tokens, with their ids where the files give them:
    /// tokenizer_config.json's <c>added_tokens_decoder</c> and <c>additional_special_tokens</c>, and added_tokens.json.
    /// </summary>
    public IEnumerable<(string Content, int? Id, bool LStrip, bool RStrip)> ExtraAddedTokens()
    {
        var config = Json(TokenizerFiles.TokenizerConfigJson);
        if (config?["added_tokens_decoder"] is JsonObject decoder)
        {
            foreach (var (key, value) in decoder)
            {
                if (!int.TryParse(key, out var id) || value is null)
                    throw new CheckpointFormatException(PathOf(TokenizerFiles.TokenizerConfigJson), $"added_tokens_decoder entry '{key}' is not an id with a token");
                var spec = ReadTokenSpec(value, TokenizerFiles.TokenizerConfigJson, $"added_tokens_decoder.{key}");
                yield return (spec.Content, id, spec.LStrip, spec.RStrip);
            }
        }
        foreach (var file in new[] { TokenizerFiles.TokenizerConfigJson, TokenizerFiles.SpecialTokensMapJson })
        {
            if (Json(file)?["additional_special_tokens"] is not JsonArray extra) continue;
            foreach (var node in extra)
            {
                if (node is null) continue;
                var spec = ReadTokenSpec(node, file, "additional_special_tokens");
                yield return (spec.Content, null, spec.LStrip, spec.RStrip);
            }
            break;
        }
        if (Json(TokenizerFiles.AddedTokensJson) is { } added)
        {
            foreach (var (content, value) in added)
            {
                if (value is not JsonValue v || !v.TryGetValue<int>(out var id))
                    throw new CheckpointFormatException(PathOf(TokenizerFiles.AddedTokensJson), $"token '{content}' has no integer id");
                yield return (content, id, false, false);
            }
        }
    }

    (string Content, bool LStrip, bool RStrip) ReadTokenSpec(JsonNode node, string file, string key)
    {
        if (node is JsonValue v && v.TryGetValue<string>(out var text)) return (text, false, false);
        if (node is JsonObject o && o["content"] is JsonValue c && c.TryGetValue<string>(out var content))
            return (content, Flag(o, "lstrip"), Flag(o, "rstrip"));
        throw new CheckpointFormatException(PathOf(file), $"'{key}' is neither a token string nor an object with a 'content' string ({node.ToJsonString()})");
    }

    static bool Flag(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue<bool>(out var b) && b;
}
