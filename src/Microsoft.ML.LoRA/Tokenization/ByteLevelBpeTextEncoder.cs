using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.Tokenizers;

namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// RoBERTa / GPT-2 tokenization as Hugging Face's fast tokenizers do it: added tokens (&lt;s&gt;, &lt;/s&gt;,
/// &lt;|endoftext|&gt;, ...) are matched in the raw text; each stretch between them gets an optional leading space
/// (add_prefix_space), is split by the GPT-2 pattern, turned into UTF-8 byte symbols (space = Ġ) and merged by BPE.
/// RoBERTa: <c>&lt;s&gt; a &lt;/s&gt;</c> and <c>&lt;s&gt; a &lt;/s&gt;&lt;/s&gt; b &lt;/s&gt;</c>, token types all 0.
/// GPT-2: no special tokens, a pair is the two texts back to back (the second one type 1), and an example with no
/// tokens becomes the single end-of-text token.
/// </summary>
/// <remarks>
/// BPE merging and the byte mapping are Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/> (byte-level mode); the
/// split is this library's <see cref="ByteLevelPreTokenizer"/>. Microsoft.ML.Tokenizers' CodeGen tokenizer is not used:
/// it treats runs of spaces as CodeGen's extra tokens (ids GPT-2 does not have) and always skips the first line of
/// merges.txt.
/// </remarks>
public sealed class ByteLevelBpeTextEncoder : ITextEncoder
{
    readonly BpeTokenizer _model;
    readonly AddedTokenSplitter _addedTokens;
    readonly TruncatingEncoder _encoder;

    ByteLevelBpeTextEncoder(BpeTokenizer model, AddedTokenSplitter addedTokens, bool addPrefixSpace, SpecialTokensLayout layout,
        int maxLength, int padTokenId, int? emptyTextTokenId, int vocabSize, string source, IReadOnlyCollection<int> specialTokenIds, int? maskTokenId)
    {
        _model = model;
        _addedTokens = addedTokens;
        AddPrefixSpace = addPrefixSpace;
        PadTokenId = padTokenId;
        SpecialTokenIds = specialTokenIds;
        MaskTokenId = maskTokenId;
        Source = source;
        _encoder = new TruncatingEncoder(Tokenize, layout, maxLength, emptyTextTokenId, vocabSize, $"the byte-level BPE tokenizer from {source}");
    }

    /// <inheritdoc />
    public int MaxLength => _encoder.MaxLength;

    /// <inheritdoc />
    public int PadTokenId { get; }

    /// <summary>Whether a space is put before each text (so its first word is encoded like a word inside a sentence).</summary>
    public bool AddPrefixSpace { get; }

    /// <summary>The file the vocabulary was read from.</summary>
    public string Source { get; }

    /// <inheritdoc />
    public IReadOnlyCollection<int> SpecialTokenIds { get; }

    /// <inheritdoc />
    public int? MaskTokenId { get; }

    /// <inheritdoc />
    /// <remarks>Safe to call from several threads at once.</remarks>
    public EncodedText Encode(string? text, string? pair = null) => _encoder.Encode(text, pair);

    void Tokenize(string text, List<int> ids) =>
        _addedTokens.Split(text, segment =>
        {
            if (AddPrefixSpace && segment[0] != ' ') segment = " " + segment;
            ids.AddRange(_model.EncodeToIds(Utf8Text.RepairSurrogates(segment)));
        }, ids.Add);

    /// <summary>
    /// Loads from <c>tokenizer.json</c> (a BPE model) when the folder has one, else from <c>vocab.json</c> +
    /// <c>merges.txt</c>. add_prefix_space comes from tokenizer_config.json, else the tokenizer.json pre-tokenizer,
    /// else false; special tokens from tokenizer.json's post-processor, else tokenizer_config.json /
    /// special_tokens_map.json, else the family's usual ones.
    /// </summary>
    internal static ByteLevelBpeTextEncoder Load(TokenizerFolder folder, TransformerConfig config, int maxLength)
    {
        bool roberta = config.Tokenizer == TokenizerKind.RobertaByteLevelBpe;
        Dictionary<string, int> vocab;
        List<string> merges;
        var added = new List<AddedToken>();
        SpecialTokensLayout? layout = null;
        string source;
        string? unkToken = null;
        bool? prefixSpace = null;
        (string Token, int? Id)? padding = null;

        if (folder.Json(TokenizerFiles.TokenizerJson) is { } root)
        {
            source = folder.PathOf(TokenizerFiles.TokenizerJson);
            var json = new TokenizerJsonReader(root, source);
            if (json.ModelType != "BPE")
                throw json.Problem($"model.type is '{json.ModelType}', but a {config.ModelType} model needs a byte-level BPE tokenizer");
            vocab = json.Vocab();
            merges = json.Merges();
            unkToken = TokenizerJsonReader.String(json.Model, "unk_token");
            foreach (var key in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
                if (!string.IsNullOrEmpty(TokenizerJsonReader.String(json.Model, key)))
                    throw json.Problem($"model.{key} is set, which byte-level BPE (GPT-2, RoBERTa) does not use");
            if (TokenizerJsonReader.Bool(json.Model, "ignore_merges") == true)
                throw json.Problem("model.ignore_merges is true, which this library does not support");
            if (root["normalizer"] is JsonObject normalizer)
                throw json.Problem($"normalizer '{TokenizerJsonReader.String(normalizer, "type")}' is not supported for byte-level BPE (none expected)");
            prefixSpace = ReadByteLevelPreTokenizer(json);
            added.AddRange(json.AddedTokens());
            layout = json.Layout();
            padding = json.Padding();
        }
        else if (folder.Has(TokenizerFiles.VocabJson) || folder.Has(TokenizerFiles.MergesTxt))
        {
            foreach (var name in new[] { TokenizerFiles.VocabJson, TokenizerFiles.MergesTxt })
                if (!folder.Has(name))
                    throw new FileNotFoundException(
                        $"Tokenizer folder {folder.Directory} has {(name == TokenizerFiles.VocabJson ? TokenizerFiles.MergesTxt : TokenizerFiles.VocabJson)} but no {name}; byte-level BPE needs both (or tokenizer.json)",
                        folder.PathOf(name));
            source = folder.PathOf(TokenizerFiles.VocabJson);
            vocab = ReadVocabJson(folder, TokenizerFiles.VocabJson);
            merges = ReadMergesTxt(folder, TokenizerFiles.MergesTxt);
        }
        else
        {
            throw TextEncoders.MissingFiles(folder, config);
        }
        bool addPrefixSpace = folder.ConfigBool("add_prefix_space") ?? prefixSpace ?? false;

        int? IdOf(string token) =>
            added.LastOrDefault(a => a.Content == token) is { } a ? a.Id : vocab.TryGetValue(token, out var id) ? id : null;
        void AddNamed(string key, string fallback, bool lstrip = false)
        {
            var spec = folder.SpecialToken(key);
            string content = spec?.Content ?? fallback;
            if (IdOf(content) is int id && added.All(a => a.Content != content))
                added.Add(new AddedToken(content, id, spec?.LStrip ?? lstrip, spec?.RStrip ?? false));
        }
        if (roberta)
        {
            AddNamed("bos_token", "<s>");
            AddNamed("pad_token", "<pad>");
            AddNamed("eos_token", "</s>");
            AddNamed("unk_token", "<unk>");
            AddNamed("cls_token", "<s>");
            AddNamed("sep_token", "</s>");
            AddNamed("mask_token", "<mask>", lstrip: true);
        }
        else
        {
            AddNamed("bos_token", "<|endoftext|>");
            AddNamed("eos_token", "<|endoftext|>");
            AddNamed("unk_token", "<|endoftext|>");
            if (folder.SpecialToken("pad_token") is not null) AddNamed("pad_token", "<|endoftext|>");
        }
        foreach (var (content, id, lstrip, rstrip) in folder.ExtraAddedTokens())
            if ((id ?? IdOf(content)) is int tokenId && added.All(a => a.Content != content))
                added.Add(new AddedToken(content, tokenId, lstrip, rstrip));

        int? Named(string key, string fallback) => IdOf(folder.SpecialToken(key)?.Content ?? fallback);
        int Required(string key, string fallback) => Named(key, fallback)
            ?? throw new CheckpointFormatException(source, $"the {key} '{folder.SpecialToken(key)?.Content ?? fallback}' is not in the vocabulary");

        int padId;
        int? emptyTextTokenId = null;
        if (roberta)
        {
            layout ??= SpecialTokensLayout.Roberta(Required("cls_token", "<s>"), Required("sep_token", "</s>"));
            padId = Named("pad_token", padding?.Token ?? "<pad>") ?? padding?.Id ?? config.PadTokenId
                ?? throw new CheckpointFormatException(source, "RoBERTa's pad token '<pad>' is not in the vocabulary and config.json has no pad_token_id");
        }
        else
        {
            layout ??= SpecialTokensLayout.None();
            int? eos = config.EosTokenId ?? Named("eos_token", "<|endoftext|>");
            padId = config.PadTokenId ?? eos
                ?? throw new CheckpointFormatException(source, "GPT-2 needs a pad id: config.json has no pad_token_id or eos_token_id and the vocabulary has no '<|endoftext|>'");
            emptyTextTokenId = eos ?? padId;
        }

        var options = new BpeOptions(vocab)
        {
            Merges = DistinctKeepingLast(merges),
            ByteLevel = true,
            PreTokenizer = ByteLevelPreTokenizer.Instance,
            UnknownToken = unkToken is not null && vocab.ContainsKey(unkToken) ? unkToken : null,
        };
        BpeTokenizer model;
        try { model = BpeTokenizer.Create(options); }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            throw new CheckpointFormatException(source, $"the BPE vocabulary and merges do not fit together ({e.Message})");
        }
        var named = roberta
            ? new[] { ("bos_token", "<s>"), ("pad_token", "<pad>"), ("eos_token", "</s>"), ("unk_token", "<unk>"), ("cls_token", "<s>"), ("sep_token", "</s>"), ("mask_token", "<mask>") }
            : new[] { ("bos_token", "<|endoftext|>"), ("eos_token", "<|endoftext|>"), ("unk_token", "<|endoftext|>") };
        var specialIds = named.Select(t => Named(t.Item1, t.Item2)).OfType<int>().Concat(layout.Ids).Append(padId)
            .Concat(emptyTextTokenId is int empty ? [empty] : []).Distinct().Order().ToArray();
        return new ByteLevelBpeTextEncoder(model, new AddedTokenSplitter(added), addPrefixSpace, layout, maxLength, padId,
            emptyTextTokenId, config.VocabSize, source, specialIds, roberta ? Named("mask_token", "<mask>") : null);
    }

    /// <summary>add_prefix_space of the ByteLevel pre-tokenizer (alone or in a Sequence); errors for other splits.</summary>
    static bool? ReadByteLevelPreTokenizer(TokenizerJsonReader json)
    {
        var node = json.Root["pre_tokenizer"];
        if (node is null) throw json.Problem("has no pre_tokenizer; byte-level BPE needs the ByteLevel pre-tokenizer");
        var steps = node is JsonObject o && TokenizerJsonReader.String(o, "type") == "Sequence"
            ? (o["pretokenizers"] as JsonArray ?? throw json.Problem("pre_tokenizer.pretokenizers is not an array")).ToList()
            : [node];
        if (steps.Count != 1 || steps[0] is not JsonObject step || TokenizerJsonReader.String(step, "type") != "ByteLevel")
            throw json.Problem($"pre_tokenizer {node.ToJsonString()} is not supported (a single ByteLevel pre-tokenizer, as GPT-2 and RoBERTa use)");
        if (TokenizerJsonReader.Bool(step, "use_regex") == false)
            throw json.Problem("pre_tokenizer.use_regex is false, which this library does not support");
        return TokenizerJsonReader.Bool(step, "add_prefix_space");
    }

    internal static Dictionary<string, int> ReadVocabJson(TokenizerFolder folder, string fileName)
    {
        var path = folder.PathOf(fileName);
        Dictionary<string, int>? vocab;
        try { vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(folder.ReadAllText(fileName)); }
        catch (JsonException e) { throw new CheckpointFormatException(path, $"is not a JSON object of token -> id ({e.Message})"); }
        if (vocab is null || vocab.Count == 0) throw new CheckpointFormatException(path, "the vocabulary is empty");
        return new Dictionary<string, int>(vocab, StringComparer.Ordinal);
    }

    /// <summary>merges.txt: "a b" a line; "#version" lines and empty lines are skipped.</summary>
    internal static List<string> ReadMergesTxt(TokenizerFolder folder, string fileName)
    {
        var path = folder.PathOf(fileName);
        var merges = new List<string>();
        int lineNumber = 0;
        foreach (var raw in folder.ReadLines(fileName))
        {
            lineNumber++;
            var line = raw.TrimEnd('\r');
            if (line.Length == 0 || line.StartsWith("#version", StringComparison.Ordinal)) continue;
            int space = line.IndexOf(' ');
            if (space <= 0 || space == line.Length - 1 || line.IndexOf(' ', space + 1) >= 0)
                throw new CheckpointFormatException(path, $"line {lineNumber} is not two tokens separated by one space: \"{line}\"");
            merges.Add(line);
        }
        return merges;
    }

    /// <summary>Hugging Face keeps the last rank of a merge listed twice; Microsoft.ML.Tokenizers would reject the file.</summary>
    static List<string> DistinctKeepingLast(List<string> merges)
    {
        var last = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < merges.Count; i++) last[merges[i]] = i;
        if (last.Count == merges.Count) return merges;
        return merges.Where((m, i) => last[m] == i).ToList();
    }
}
