using System.Text;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.Tokenizers;

namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// BERT / DistilBERT tokenization as Hugging Face's fast BertTokenizer does it: added tokens ([CLS], [SEP], ...) are
/// matched in the raw text, the rest goes through the BERT normalizer and pre-tokenizer and then WordPiece
/// (greedy longest match, "##" continuations, [UNK] for a word that cannot be spelled or is over 100 characters).
/// Output: <c>[CLS] a [SEP]</c>, or <c>[CLS] a [SEP] b [SEP]</c> with token type 1 for <c>b [SEP]</c>.
/// </summary>
/// <remarks>
/// The WordPiece model itself is Microsoft.ML.Tokenizers' <see cref="WordPieceTokenizer"/>; the normalizer and
/// pre-tokenizer are this library's (<see cref="BertTextNormalizer"/>, <see cref="BertPreTokenizer"/>) because
/// Microsoft.ML.Tokenizers' BERT ones give different ids from Hugging Face's for newlines, $ + = £, emoji, '_', soft
/// hyphens, Korean and accents (its default keeps accents on uncased models).
/// </remarks>
public sealed class WordPieceTextEncoder : ITextEncoder
{
    readonly WordPieceTokenizer _model;
    readonly AddedTokenSplitter _addedTokens;
    readonly TruncatingEncoder _encoder;

    WordPieceTextEncoder(WordPieceTokenizer model, AddedTokenSplitter addedTokens, SpecialTokensLayout layout, int maxLength,
        int padTokenId, int vocabSize, string source, IReadOnlyCollection<int> specialTokenIds, int? maskTokenId)
    {
        _model = model;
        _addedTokens = addedTokens;
        PadTokenId = padTokenId;
        SpecialTokenIds = specialTokenIds;
        MaskTokenId = maskTokenId;
        Source = source;
        _encoder = new TruncatingEncoder(Tokenize, layout, maxLength, emptyTextTokenId: null, vocabSize, $"the WordPiece tokenizer from {source}");
    }

    /// <inheritdoc />
    public int MaxLength => _encoder.MaxLength;

    /// <inheritdoc />
    public int PadTokenId { get; }

    /// <summary>The file the vocabulary was read from.</summary>
    public string Source { get; }

    /// <inheritdoc />
    public IReadOnlyCollection<int> SpecialTokenIds { get; }

    /// <inheritdoc />
    public int? MaskTokenId { get; }

    /// <summary>Whether text is lowercased before WordPiece (do_lower_case / the normalizer's lowercase).</summary>
    public bool Lowercase => ((BertTextNormalizer)_model.Normalizer!).Lowercase;

    /// <summary>Whether accents are stripped (strip_accents, which follows lowercasing when unset).</summary>
    public bool StripAccents => ((BertTextNormalizer)_model.Normalizer!).StripAccents;

    /// <inheritdoc />
    /// <remarks>Safe to call from several threads at once.</remarks>
    public EncodedText Encode(string? text, string? pair = null) => _encoder.Encode(text, pair);

    void Tokenize(string text, List<int> ids) =>
        _addedTokens.Split(text, segment => ids.AddRange(_model.EncodeToIds(segment)), ids.Add);

    /// <summary>
    /// Loads from <c>tokenizer.json</c> (a WordPiece model) when the folder has one, else from <c>vocab.txt</c>;
    /// <c>tokenizer_config.json</c> settings (do_lower_case, strip_accents, tokenize_chinese_chars, special tokens) take
    /// precedence, as in transformers.
    /// </summary>
    internal static WordPieceTextEncoder Load(TokenizerFolder folder, TransformerConfig config, int maxLength)
    {
        Dictionary<string, int> vocab;
        var added = new List<AddedToken>();
        SpecialTokensLayout? layout = null;
        string source, unkToken = folder.SpecialToken("unk_token")?.Content ?? "[UNK]";
        string prefix = "##";
        int maxCharsPerWord = 100;
        bool clean = true, chinese = true, lowercase = true;
        bool? strip = null;
        (string Token, int? Id)? padding = null;

        if (folder.Json(TokenizerFiles.TokenizerJson) is { } root)
        {
            source = folder.PathOf(TokenizerFiles.TokenizerJson);
            var json = new TokenizerJsonReader(root, source);
            if (json.ModelType != "WordPiece")
                throw json.Problem($"model.type is '{json.ModelType}', but a {config.ModelType} model needs a WordPiece tokenizer");
            vocab = json.Vocab();
            unkToken = TokenizerJsonReader.String(json.Model, "unk_token") ?? unkToken;
            prefix = TokenizerJsonReader.String(json.Model, "continuing_subword_prefix") ?? prefix;
            maxCharsPerWord = TokenizerJsonReader.Int(json.Model, "max_input_chars_per_word") ?? maxCharsPerWord;
            if (root["normalizer"] is System.Text.Json.Nodes.JsonObject normalizer)
            {
                if (TokenizerJsonReader.String(normalizer, "type") != "BertNormalizer")
                    throw json.Problem($"normalizer type '{TokenizerJsonReader.String(normalizer, "type")}' is not supported for WordPiece (BertNormalizer)");
                clean = TokenizerJsonReader.Bool(normalizer, "clean_text") ?? true;
                chinese = TokenizerJsonReader.Bool(normalizer, "handle_chinese_chars") ?? true;
                lowercase = TokenizerJsonReader.Bool(normalizer, "lowercase") ?? true;
                strip = TokenizerJsonReader.Bool(normalizer, "strip_accents");
            }
            else
            {
                clean = chinese = lowercase = false;
                strip = false;
            }
            if (root["pre_tokenizer"] is System.Text.Json.Nodes.JsonObject pre && TokenizerJsonReader.String(pre, "type") != "BertPreTokenizer")
                throw json.Problem($"pre_tokenizer type '{TokenizerJsonReader.String(pre, "type")}' is not supported for WordPiece (BertPreTokenizer)");
            added.AddRange(json.AddedTokens());
            layout = json.Layout();
            padding = json.Padding();
        }
        else if (folder.Has(TokenizerFiles.VocabTxt))
        {
            source = folder.PathOf(TokenizerFiles.VocabTxt);
            vocab = ReadVocabTxt(folder, TokenizerFiles.VocabTxt);
        }
        else
        {
            throw TextEncoders.MissingFiles(folder, config);
        }

        // transformers' BertTokenizer(Fast) settings override the file's normalizer when tokenizer_config.json sets them.
        lowercase = folder.ConfigBool("do_lower_case") ?? lowercase;
        strip = folder.ConfigBool("strip_accents") ?? strip;
        chinese = folder.ConfigBool("tokenize_chinese_chars") ?? chinese;

        int? IdOf(string token) =>
            added.LastOrDefault(a => a.Content == token) is { } a ? a.Id : vocab.TryGetValue(token, out var id) ? id : null;
        void AddNamed(string key, string fallback)
        {
            var spec = folder.SpecialToken(key);
            string content = spec?.Content ?? fallback;
            if (IdOf(content) is int id && added.All(a => a.Content != content))
                added.Add(new AddedToken(content, id, spec?.LStrip ?? false, spec?.RStrip ?? false));
        }
        AddNamed("unk_token", "[UNK]");
        AddNamed("sep_token", "[SEP]");
        AddNamed("pad_token", "[PAD]");
        AddNamed("cls_token", "[CLS]");
        AddNamed("mask_token", "[MASK]");
        foreach (var (content, id, lstrip, rstrip) in folder.ExtraAddedTokens())
            if ((id ?? IdOf(content)) is int tokenId && added.All(a => a.Content != content))
                added.Add(new AddedToken(content, tokenId, lstrip, rstrip));

        int Required(string key, string fallback)
        {
            string content = folder.SpecialToken(key)?.Content ?? fallback;
            return IdOf(content) ?? throw new CheckpointFormatException(source, $"the {key} '{content}' is not in the vocabulary");
        }
        layout ??= SpecialTokensLayout.Bert(Required("cls_token", "[CLS]"), Required("sep_token", "[SEP]"));
        string padToken = folder.SpecialToken("pad_token")?.Content ?? padding?.Token ?? "[PAD]";
        int padId = IdOf(padToken) ?? padding?.Id ?? config.PadTokenId
            ?? throw new CheckpointFormatException(source, $"the pad token '{padToken}' is not in the vocabulary and config.json has no pad_token_id");
        if (!vocab.ContainsKey(unkToken))
            throw new CheckpointFormatException(source, $"the unknown token '{unkToken}' is not in the vocabulary");

        var options = new WordPieceOptions
        {
            UnknownToken = unkToken,
            ContinuingSubwordPrefix = prefix,
            MaxInputCharsPerWord = maxCharsPerWord,
            Normalizer = new BertTextNormalizer(clean, chinese, strip ?? lowercase, lowercase),
            PreTokenizer = BertPreTokenizer.Instance,
        };
        using var vocabStream = VocabStream(vocab);
        var model = WordPieceTokenizer.Create(vocabStream, options);
        int? Optional(string key, string fallback) => IdOf(folder.SpecialToken(key)?.Content ?? fallback);
        var specialIds = new[] { ("unk_token", "[UNK]"), ("sep_token", "[SEP]"), ("pad_token", "[PAD]"), ("cls_token", "[CLS]"), ("mask_token", "[MASK]") }
            .Select(t => Optional(t.Item1, t.Item2)).OfType<int>().Concat(layout.Ids).Append(padId).Distinct().Order().ToArray();
        return new WordPieceTextEncoder(model, new AddedTokenSplitter(added), layout, maxLength, padId, config.VocabSize, source,
            specialIds, Optional("mask_token", "[MASK]"));
    }

    /// <summary>Reads vocab.txt as Hugging Face does: id = line index, trailing whitespace trimmed, a repeated token keeps its last id.</summary>
    internal static Dictionary<string, int> ReadVocabTxt(TokenizerFolder folder, string fileName)
    {
        var path = folder.PathOf(fileName);
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        int index = 0;
        foreach (var line in folder.ReadLines(fileName))
        {
            vocab[line.TrimEnd()] = index;
            index++;
        }
        vocab.Remove("");
        if (vocab.Count == 0) throw new CheckpointFormatException(path, "the vocabulary is empty");
        return vocab;
    }

    /// <summary>
    /// The vocabulary as a vocab.txt stream for Microsoft.ML.Tokenizers (id = line index): ids no token owns become
    /// empty lines, which it skips, and tokens it could not read back (with a line break) are left out; such a token
    /// could never be matched anyway, as words never contain whitespace.
    /// </summary>
    static MemoryStream VocabStream(Dictionary<string, int> vocab)
    {
        int size = vocab.Values.Max() + 1;
        var lines = new string[size];
        foreach (var (token, id) in vocab)
            if (token.IndexOfAny(['\n', '\r']) < 0) lines[id] = token;
        var text = new StringBuilder();
        foreach (var line in lines) text.Append(line).Append('\n');
        return new MemoryStream(Encoding.UTF8.GetBytes(text.ToString()));
    }
}
