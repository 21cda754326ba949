using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// What a tokenizer.json does to the text between its added tokens, step by step as Hugging Face tokenizers does it:
/// the normalizer (NFC/NFD/NFKC/NFKD, Lowercase, Strip, StripAccents, Prepend, Replace, Precompiled, Sequence), the
/// pre-tokenizer (Metaspace, ByteLevel, Split with behavior Isolated, Sequence) and the model on each piece (BPE, with
/// or without byte fallback; Unigram). Anything else is an error naming the field, never a silent difference in ids.
/// </summary>
internal sealed class TokenizerJsonPipeline
{
    /// <summary>
    /// Split patterns (Llama-3's, Qwen2's, GPT-2's) checked alternative by alternative: no match runs across a space or
    /// tab that follows a non-whitespace character, so a long text may be cut there (but not before a line break, which
    /// Llama-3 and Qwen2 join to the punctuation before it). Other patterns get no cuts: the whole text is tokenized.
    /// </summary>
    internal static readonly string[] SpaceSafeSplitPatterns =
    [
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
    ];

    /// <summary>A piece of pre-tokenized text; <see cref="AtStart"/>: it starts the whole text (offset 0).</summary>
    readonly record struct Piece(string Text, bool AtStart);

    enum PrependScheme { Always, First, Never }

    readonly TokenizerJsonReader _json;
    readonly List<Func<string, string>> _normalizers = new();
    readonly List<Func<IEnumerable<Piece>, IEnumerable<Piece>>> _preTokenizers = new();
    readonly List<string> _splitPatterns = new();
    Action<string, List<int>> _model = null!;

    TokenizerJsonPipeline(TokenizerJsonReader json) => _json = json;

    /// <summary>"BPE" or "Unigram".</summary>
    public string ModelType { get; private set; } = "";

    /// <summary>The model's vocabulary (token -> id).</summary>
    public IReadOnlyDictionary<string, int> Vocab { get; private set; } = null!;

    /// <summary>Where a long text may be cut (see <see cref="LongTextTokenizer"/>).</summary>
    public string CutBefore => _splitPatterns.Count == 0 ? LongTextTokenizer.DefaultCutCharacters
        : _splitPatterns.All(p => SpaceSafeSplitPatterns.Contains(p)) ? " \t" : "";

    /// <summary>Reads the normalizer, pre-tokenizer and model of a tokenizer.json.</summary>
    /// <exception cref="Checkpoints.CheckpointFormatException">A part is malformed or of a kind this library does not run.</exception>
    public static TokenizerJsonPipeline Load(TokenizerJsonReader json)
    {
        var pipeline = new TokenizerJsonPipeline(json);
        pipeline.ReadModel();
        pipeline.ReadNormalizer(json.Root["normalizer"], "normalizer");
        pipeline.ReadPreTokenizer(json.Root["pre_tokenizer"], "pre_tokenizer");
        return pipeline;
    }

    /// <summary>
    /// Appends the ids of a stretch of text between added tokens; <paramref name="atStart"/>: the stretch starts the
    /// text (Metaspace's "first" scheme prepends ▁ only there).
    /// </summary>
    public void Tokenize(string segment, bool atStart, List<int> ids)
    {
        string text = Utf8Text.RepairSurrogates(segment);
        foreach (var normalize in _normalizers) text = normalize(text);
        if (text.Length == 0) return;
        IEnumerable<Piece> pieces = [new Piece(text, atStart)];
        foreach (var preTokenize in _preTokenizers) pieces = preTokenize(pieces);
        foreach (var piece in pieces)
            if (piece.Text.Length > 0) _model(piece.Text, ids);
    }

    void ReadModel()
    {
        var model = _json.Model;
        ModelType = _json.ModelType;
        switch (ModelType)
        {
            case "BPE":
            {
                if (model["dropout"] is JsonValue d && d.TryGetValue<double>(out var dropout) && dropout > 0)
                    throw _json.Problem($"model.dropout is {dropout.ToString(CultureInfo.InvariantCulture)}: BPE dropout makes tokenization random, which this library does not support");
                var vocab = _json.Vocab();
                var bpe = new BpeModel(vocab, _json.MergePairs(), TokenizerJsonReader.String(model, "unk_token"),
                    TokenizerJsonReader.Bool(model, "fuse_unk") ?? false, TokenizerJsonReader.Bool(model, "byte_fallback") ?? false,
                    TokenizerJsonReader.Bool(model, "ignore_merges") ?? false, TokenizerJsonReader.String(model, "continuing_subword_prefix"),
                    TokenizerJsonReader.String(model, "end_of_word_suffix"), _json.Problem);
                Vocab = vocab;
                _model = bpe.Encode;
                break;
            }
            case "Unigram":
            {
                var pieces = _json.UnigramVocab();
                int? unkId = TokenizerJsonReader.Int(model, "unk_id");
                if (unkId is int u && (u < 0 || u >= pieces.Count))
                    throw _json.Problem($"model.unk_id {u} is outside the {pieces.Count}-piece vocabulary");
                var unigram = new UnigramModel(pieces, unkId, TokenizerJsonReader.Bool(model, "byte_fallback") ?? false, _json.Path);
                Vocab = unigram.Vocab;
                _model = unigram.Encode;
                break;
            }
            default:
                throw _json.Problem($"model.type is '{ModelType}'; a tokenizer read from the checkpoint's own files must be BPE or Unigram");
        }
    }

    void ReadNormalizer(JsonNode? node, string field)
    {
        if (node is null) return;
        if (node is not JsonObject o) throw _json.Problem($"{field} is not an object");
        string type = TokenizerJsonReader.String(o, "type") ?? throw _json.Problem($"{field} has no type");
        switch (type)
        {
            case "Sequence":
                if (o["normalizers"] is not JsonArray steps) throw _json.Problem($"{field}.normalizers is not an array");
                for (int i = 0; i < steps.Count; i++) ReadNormalizer(steps[i], $"{field}.normalizers[{i}]");
                break;
            case "NFC": _normalizers.Add(t => t.Normalize(NormalizationForm.FormC)); break;
            case "NFD": _normalizers.Add(t => t.Normalize(NormalizationForm.FormD)); break;
            case "NFKC": _normalizers.Add(t => t.Normalize(NormalizationForm.FormKC)); break;
            case "NFKD": _normalizers.Add(t => t.Normalize(NormalizationForm.FormKD)); break;
            case "Lowercase": _normalizers.Add(Lowercase); break;
            case "StripAccents": _normalizers.Add(StripMarks); break;
            case "Strip":
            {
                bool left = TokenizerJsonReader.Bool(o, "strip_left") ?? true, right = TokenizerJsonReader.Bool(o, "strip_right") ?? true;
                _normalizers.Add(t => left && right ? t.Trim() : left ? t.TrimStart() : right ? t.TrimEnd() : t);
                break;
            }
            case "Prepend":
            {
                string prepend = TokenizerJsonReader.String(o, "prepend") ?? throw _json.Problem($"{field}.prepend is not a string");
                _normalizers.Add(t => t.Length == 0 ? t : prepend + t);
                break;
            }
            case "Replace":
            {
                var regex = Pattern(o, field);
                string content = TokenizerJsonReader.String(o, "content") ?? throw _json.Problem($"{field}.content is not a string");
                _normalizers.Add(t => regex.Replace(t, _ => content)); // the content is literal, never a substitution pattern
                break;
            }
            case "Precompiled":
            {
                string? base64 = TokenizerJsonReader.String(o, "precompiled_charsmap");
                if (string.IsNullOrEmpty(base64)) break;
                byte[] blob;
                try { blob = Convert.FromBase64String(base64); }
                catch (FormatException) { throw _json.Problem($"{field}.precompiled_charsmap is not base64"); }
                var charsmap = PrecompiledCharsmap.Parse(blob, _json.Path, $"{field}.precompiled_charsmap");
                _normalizers.Add(charsmap.NormalizeLikeHuggingFace);
                break;
            }
            default:
                throw _json.Problem($"{field} type '{type}' is not supported (NFC, NFD, NFKC, NFKD, Lowercase, Strip, StripAccents, Prepend, Replace, Precompiled, Sequence)");
        }
    }

    void ReadPreTokenizer(JsonNode? node, string field)
    {
        if (node is null) return;
        if (node is not JsonObject o) throw _json.Problem($"{field} is not an object");
        string type = TokenizerJsonReader.String(o, "type") ?? throw _json.Problem($"{field} has no type");
        switch (type)
        {
            case "Sequence":
                if (o["pretokenizers"] is not JsonArray steps) throw _json.Problem($"{field}.pretokenizers is not an array");
                for (int i = 0; i < steps.Count; i++) ReadPreTokenizer(steps[i], $"{field}.pretokenizers[{i}]");
                break;
            case "Metaspace":
            {
                string replacement = TokenizerJsonReader.String(o, "replacement") ?? "\u2581";
                if (replacement.Length != 1) throw _json.Problem($"{field}.replacement '{replacement}' is not one character");
                // Older files have add_prefix_space instead of prepend_scheme (true: always).
                var scheme = TokenizerJsonReader.String(o, "prepend_scheme") switch
                {
                    "always" => PrependScheme.Always,
                    "first" => PrependScheme.First,
                    "never" => PrependScheme.Never,
                    null => TokenizerJsonReader.Bool(o, "add_prefix_space") == false ? PrependScheme.Never : PrependScheme.Always,
                    var other => throw _json.Problem($"{field}.prepend_scheme '{other}' is not always, first or never"),
                };
                bool split = TokenizerJsonReader.Bool(o, "split") ?? true;
                char meta = replacement[0];
                _preTokenizers.Add(pieces => Metaspace(pieces, meta, scheme, split));
                break;
            }
            case "ByteLevel":
            {
                bool addPrefixSpace = TokenizerJsonReader.Bool(o, "add_prefix_space") ?? true;
                bool useRegex = TokenizerJsonReader.Bool(o, "use_regex") ?? true;
                if (useRegex) _splitPatterns.Add(SpaceSafeSplitPatterns[2]);
                _preTokenizers.Add(pieces => ByteLevel(pieces, addPrefixSpace, useRegex));
                break;
            }
            case "Split":
            {
                var regex = Pattern(o, field);
                string behavior = TokenizerJsonReader.String(o, "behavior") ?? "(missing)";
                if (behavior != "Isolated")
                    throw _json.Problem($"{field}.behavior '{behavior}' is not supported (Isolated, as Llama-3 and Qwen2 use)");
                if (TokenizerJsonReader.Bool(o, "invert") == true) throw _json.Problem($"{field}.invert is true, which this library does not support");
                var splitter = new CodePointRegex(regex.ToString());
                _splitPatterns.Add(splitter.Pattern);
                _preTokenizers.Add(pieces => Split(pieces, splitter));
                break;
            }
            default:
                throw _json.Problem($"{field} type '{type}' is not supported (Metaspace, ByteLevel, Split, Sequence)");
        }
    }

    /// <summary>A Replace or Split pattern: {"String": s} (matched literally) or {"Regex": r}.</summary>
    Regex Pattern(JsonObject o, string field)
    {
        if (o["pattern"] is JsonObject pattern)
        {
            if (TokenizerJsonReader.String(pattern, "String") is { } literal) return new Regex(Regex.Escape(literal), RegexOptions.CultureInvariant);
            if (TokenizerJsonReader.String(pattern, "Regex") is { } expression)
            {
                try { return new Regex(expression, RegexOptions.CultureInvariant); }
                catch (ArgumentException e) { throw _json.Problem($"{field}.pattern.Regex is not a regular expression .NET can run ({e.Message})"); }
            }
        }
        throw _json.Problem($"{field}.pattern is neither {{\"String\": ...}} nor {{\"Regex\": ...}}");
    }

    /// <summary>
    /// Hugging Face's Metaspace: spaces become the replacement character; one is prepended as the scheme says (never
    /// to a piece that already starts with it); with split, the piece is cut before each replacement character.
    /// </summary>
    static IEnumerable<Piece> Metaspace(IEnumerable<Piece> pieces, char replacement, PrependScheme scheme, bool split)
    {
        foreach (var piece in pieces)
        {
            string text = piece.Text.Replace(' ', replacement);
            if (text.Length > 0 && text[0] != replacement && (scheme == PrependScheme.Always || (scheme == PrependScheme.First && piece.AtStart)))
                text = replacement + text;
            if (!split)
            {
                yield return piece with { Text = text };
                continue;
            }
            bool first = true;
            foreach (var word in CutBeforeEach(text, replacement))
            {
                yield return new Piece(word, piece.AtStart && first);
                first = false;
            }
        }
    }

    /// <summary>
    /// <paramref name="text"/> cut before each <paramref name="mark"/> but a leading one (Metaspace's split: each word
    /// keeps the ▁ it starts with); nothing for an empty text.
    /// </summary>
    internal static IEnumerable<string> CutBeforeEach(string text, char mark)
    {
        int start = 0;
        for (int i = 1; i < text.Length; i++)
        {
            if (text[i] != mark) continue;
            yield return text[start..i];
            start = i;
        }
        if (start < text.Length) yield return start == 0 ? text : text[start..];
    }

    /// <summary>Hugging Face's ByteLevel pre-tokenizer: optional leading space, optional GPT-2 split, then byte symbols.</summary>
    static IEnumerable<Piece> ByteLevel(IEnumerable<Piece> pieces, bool addPrefixSpace, bool useRegex)
    {
        foreach (var piece in pieces)
        {
            string text = addPrefixSpace && piece.Text[0] != ' ' ? " " + piece.Text : piece.Text;
            if (!useRegex)
            {
                yield return new Piece(ByteLevelAlphabet.Map(text), piece.AtStart);
                continue;
            }
            bool first = true;
            foreach (var (offset, length) in ByteLevelPreTokenizer.Split(text))
            {
                yield return new Piece(ByteLevelAlphabet.Map(text.Substring(offset, length)), piece.AtStart && first);
                first = false;
            }
        }
    }

    static IEnumerable<Piece> Split(IEnumerable<Piece> pieces, CodePointRegex splitter)
    {
        foreach (var piece in pieces)
        {
            bool first = true;
            foreach (var part in splitter.SplitIsolated(piece.Text))
            {
                yield return new Piece(part, piece.AtStart && first);
                first = false;
            }
        }
    }

    /// <summary>
    /// Hugging Face's Lowercase: each character's full lowercase mapping (Rust's char::to_lowercase), so İ becomes i
    /// followed by a combining dot, as there; no final-sigma rule, as there.
    /// </summary>
    static string Lowercase(string text)
    {
        var result = new StringBuilder(text.Length);
        foreach (var rune in text.EnumerateRunes())
        {
            if (rune.Value == 0x130) result.Append("i\u0307");
            else result.Append(Rune.ToLowerInvariant(rune).ToString());
        }
        return result.ToString();
    }

    /// <summary>Hugging Face's StripAccents: drops combining marks (categories Mn, Mc, Me).</summary>
    static string StripMarks(string text)
    {
        var result = new StringBuilder(text.Length);
        foreach (var rune in text.EnumerateRunes())
        {
            var category = Rune.GetUnicodeCategory(rune);
            if (category is not (UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark))
                result.Append(rune.ToString());
        }
        return result.ToString();
    }
}
