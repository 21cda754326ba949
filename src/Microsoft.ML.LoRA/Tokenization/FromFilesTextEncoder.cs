using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;

namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// The tokenizer a checkpoint brings in its own files (<see cref="TokenizerKind.FromFiles"/>: DeBERTa-v3, Llama-2,
/// Mistral, TinyLlama, Llama-3, Qwen2): a <c>tokenizer.json</c> run as Hugging Face's fast tokenizers run it (BPE with
/// byte-level pre-tokenization or with byte fallback and Metaspace; Unigram), else a SentencePiece model
/// (<c>tokenizer.model</c>, <c>spm.model</c>) run as transformers' conversion of it to a fast tokenizer runs. Added tokens are matched in the
/// raw text first; special tokens go where the checkpoint's files put them.
/// </summary>
/// <remarks>
/// <para>
/// Special tokens: tokenizer.json's post-processor (TemplateProcessing, BertProcessing, RobertaProcessing), except that
/// a tokenizer_config.json naming a Llama tokenizer class (LlamaTokenizer, CodeLlamaTokenizer, GemmaTokenizer) lays
/// them out from its add_bos_token (default true) and add_eos_token (default false), as LlamaTokenizerFast rebuilds its
/// template from them. For a SentencePiece model: DeBERTa's [CLS] A [SEP] / [CLS] A [SEP] B [SEP] (tokenizer class
/// DebertaV2Tokenizer or model type deberta-v2), else Llama's bos/eos flags. Named tokens (bos, eos, unk, sep, pad, cls,
/// mask) come from tokenizer_config.json, then special_tokens_map.json, then the tokenizer class's defaults.
/// </para>
/// <para>
/// Padding: the tokenizer's pad token, else config.json's pad_token_id, else the end-of-sequence token
/// (<see cref="PadTokenIsEndOfSequence"/>): Llama-2 and Llama-3 checkpoints name no pad token, and the usual recipe is
/// <c>tokenizer.pad_token = tokenizer.eos_token</c>. The attention mask hides padding and this library's classifiers
/// read the last real token through the mask, so the id chosen changes no result. With no end-of-sequence token either,
/// loading fails and says to set pad_token_id in config.json.
/// </para>
/// <para>
/// The chat template is never applied: the text goes in as it is. Differences from Hugging Face that remain: added
/// tokens marked <c>normalized: true</c> are matched in the raw text, not the normalized one, and single_word is
/// ignored; regular expressions run on .NET's engine (code-point aware, see <see cref="CodePointRegex"/>), whose
/// Unicode tables may differ from Oniguruma's in the newest characters.
/// </para>
/// </remarks>
public sealed class FromFilesTextEncoder : ITextEncoder
{
    readonly AddedTokenSplitter _addedTokens;
    readonly Action<string, bool, List<int>> _tokenize;
    readonly TruncatingEncoder _encoder;

    FromFilesTextEncoder(AddedTokenSplitter addedTokens, Action<string, bool, List<int>> tokenize, SpecialTokensLayout layout, int maxLength,
        int padTokenId, bool padIsEos, int? emptyTextTokenId, int vocabSize, string source, string format, IReadOnlyCollection<int> specialTokenIds,
        int? maskTokenId, string cutBefore)
    {
        _addedTokens = addedTokens;
        _tokenize = tokenize;
        PadTokenId = padTokenId;
        PadTokenIsEndOfSequence = padIsEos;
        SpecialTokenIds = specialTokenIds;
        MaskTokenId = maskTokenId;
        Source = source;
        Format = format;
        _encoder = new TruncatingEncoder(Tokenize, layout, maxLength, emptyTextTokenId, vocabSize, $"the {format} tokenizer from {source}", cutBefore);
    }

    /// <inheritdoc />
    public int MaxLength => _encoder.MaxLength;

    /// <inheritdoc />
    /// <remarks>See <see cref="PadTokenIsEndOfSequence"/> for a tokenizer without a pad token.</remarks>
    public int PadTokenId { get; }

    /// <summary>
    /// True when neither the tokenizer nor config.json names a pad token and <see cref="PadTokenId"/> is the
    /// end-of-sequence token (Llama's usual <c>pad_token = eos_token</c>).
    /// </summary>
    public bool PadTokenIsEndOfSequence { get; }

    /// <inheritdoc />
    public IReadOnlyCollection<int> SpecialTokenIds { get; }

    /// <inheritdoc />
    public int? MaskTokenId { get; }

    /// <summary>The file the tokenizer was read from (tokenizer.json, tokenizer.model or spm.model).</summary>
    public string Source { get; }

    /// <summary>What was read: "tokenizer.json BPE", "tokenizer.json Unigram", "SentencePiece BPE", "SentencePiece Unigram".</summary>
    public string Format { get; }

    /// <inheritdoc />
    /// <remarks>Safe to call from several threads at once.</remarks>
    public EncodedText Encode(string? text, string? pair = null) => _encoder.Encode(text, pair);

    void Tokenize(string text, List<int> ids) =>
        _addedTokens.Split(text, (segment, offset) => _tokenize(segment, offset == 0, ids), ids.Add);

    /// <summary>The tokenizer conventions whose defaults and special-token layout differ.</summary>
    enum Convention { None, Llama, Deberta, Qwen2 }

    /// <summary>
    /// Loads <c>tokenizer.json</c> when the folder has one, else <c>tokenizer.model</c> or <c>spm.model</c>.
    /// </summary>
    internal static FromFilesTextEncoder Load(TokenizerFolder folder, TransformerConfig config, int maxLength)
    {
        if (folder.Json(TokenizerFiles.TokenizerJson) is { } root) return LoadTokenizerJson(folder, config, maxLength, root);
        foreach (var name in new[] { TokenizerFiles.TokenizerModel, TokenizerFiles.SpmModel })
            if (folder.Has(name)) return LoadSentencePiece(folder, config, maxLength, name);
        throw TextEncoders.MissingFiles(folder, config);
    }

    static FromFilesTextEncoder LoadTokenizerJson(TokenizerFolder folder, TransformerConfig config, int maxLength, JsonObject root)
    {
        string source = folder.PathOf(TokenizerFiles.TokenizerJson);
        var json = new TokenizerJsonReader(root, source);
        var pipeline = TokenizerJsonPipeline.Load(json);
        var convention = ConventionOf(folder, config, sentencePiece: false);
        var specials = new SpecialTokens(folder, config, source, convention, pipeline.Vocab, json.AddedTokens(), appendMissing: false, bosEosPieces: null);
        var layout = convention == Convention.Llama ? specials.LlamaLayout() : json.Layout() ?? SpecialTokensLayout.None();
        var padding = json.Padding();
        return specials.Build(layout, padding, json.SpecialAddedTokenIds(), maxLength, $"tokenizer.json {pipeline.ModelType}",
            (segment, atStart, ids) => pipeline.Tokenize(segment, atStart, ids), pipeline.CutBefore);
    }

    static FromFilesTextEncoder LoadSentencePiece(TokenizerFolder folder, TransformerConfig config, int maxLength, string fileName)
    {
        var path = folder.PathOf(fileName);
        long length = folder.Length(fileName);
        if (length > SentencePieceModelFile.MaxBytes)
            throw new CheckpointFormatException(path, $"is {length} bytes, more than the {SentencePieceModelFile.MaxBytes}-byte limit for a SentencePiece model");
        var bytes = folder.ReadAllBytes(fileName);
        var model = SentencePieceModelFile.Read(bytes, path);
        if (model.ModelType is not (SentencePieceModelFile.Unigram or SentencePieceModelFile.Bpe))
            throw new CheckpointFormatException(path, $"trainer_spec.model_type is {model.ModelTypeName}; only Unigram and BPE SentencePiece models are supported");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < model.Pieces.Count; id++) vocab[model.Pieces[id].Piece] = id;
        Action<string, List<int>> encodeText = model.ModelType == SentencePieceModelFile.Bpe
            ? BpeEncoder(model, vocab, path)
            : UnigramEncoder(model, path);
        var normalizer = new SentencePieceTextNormalizer(model);
        var convention = ConventionOf(folder, config, sentencePiece: true);
        // transformers' LlamaTokenizer with legacy false puts the dummy prefix before the text only, not after each
        // special token inside it (as the Metaspace "first" scheme of newer tokenizer.json files does).
        bool prefixEverySegment = convention != Convention.Llama || folder.ConfigBool("legacy") != false;
        bool lowercase = convention == Convention.Deberta && folder.ConfigBool("do_lower_case") == true;
        if (convention == Convention.Deberta && folder.ConfigBool("split_by_punct") == true)
            throw new CheckpointFormatException(folder.PathOf(TokenizerFiles.TokenizerConfigJson), "split_by_punct is true, which this library does not support");

        void Tokenize(string segment, bool atStart, List<int> ids)
        {
            string text = Utf8Text.RepairSurrogates(segment);
            if (lowercase) text = text.ToLowerInvariant();
            text = normalizer.Normalize(text, addDummyPrefix: prefixEverySegment || atStart);
            if (text.Length > 0) encodeText(text, ids);
        }

        var specials = new SpecialTokens(folder, config, path, convention, vocab, new List<AddedToken>(), appendMissing: true,
            bosEosPieces: (model.PieceOf(model.BosId) ?? model.BosPiece, model.PieceOf(model.EosId) ?? model.EosPiece, model.PieceOf(model.UnkId) ?? model.UnkPiece));
        var layout = convention == Convention.Deberta ? specials.BertLayout() : specials.LlamaLayout();
        return specials.Build(layout, null, [], maxLength, $"SentencePiece {model.ModelTypeName}", Tokenize, LongTextTokenizer.DefaultCutCharacters);
    }

    /// <summary>
    /// A BPE model (Llama-2's tokenizer.model) runs through <see cref="BpeModel"/> with the merges transformers' converter
    /// derives (<see cref="SentencePieceBpeMerges"/>), as one word: the whole normalized text. Not Microsoft.ML.Tokenizers'
    /// SentencePiece BPE, which merges a run of equal pairs from the right ("!!!" as "!" "!!", where sentencepiece and
    /// Hugging Face give "!!" "!").
    /// </summary>
    static Action<string, List<int>> BpeEncoder(SentencePieceModelFile model, Dictionary<string, int> vocab, string path)
    {
        var bpe = new BpeModel(vocab, SentencePieceBpeMerges.Of(model.Pieces, vocab), model.PieceOf(model.UnkId) ?? model.UnkPiece,
            fuseUnk: true, byteFallback: model.ByteFallback, ignoreMerges: false, continuingSubwordPrefix: null, endOfWordSuffix: null,
            problem: message => new CheckpointFormatException(path, message));
        return bpe.Encode;
    }

    /// <summary>
    /// A Unigram model (DeBERTa-v3's spm.model) runs through <see cref="UnigramModel"/> word by word, a word starting at
    /// each ▁: the fast tokenizer transformers converts spm.model into by default (Metaspace, then Unigram). It differs
    /// from the sentencepiece library's whole-text lattice only where two segmentations score the same.
    /// </summary>
    static Action<string, List<int>> UnigramEncoder(SentencePieceModelFile model, string path)
    {
        var unigram = new UnigramModel(model.Pieces.Select(p => (p.Piece, (double)p.Score)).ToList(),
            model.UnkId >= 0 && model.UnkId < model.Pieces.Count ? model.UnkId : null, model.ByteFallback, path);
        return (text, ids) =>
        {
            foreach (var word in TokenizerJsonPipeline.CutBeforeEach(text, SentencePieceTextNormalizer.SpaceSymbol[0])) unigram.Encode(word, ids);
        };
    }

    static Convention ConventionOf(TokenizerFolder folder, TransformerConfig config, bool sentencePiece)
    {
        string? tokenizerClass = folder.Json(TokenizerFiles.TokenizerConfigJson)?["tokenizer_class"] is JsonValue v
            && v.TryGetValue<string>(out var name) ? name : null;
        if (tokenizerClass is not null && tokenizerClass.EndsWith("Fast", StringComparison.Ordinal)) tokenizerClass = tokenizerClass[..^4];
        return (tokenizerClass ?? AutoTokenizerClass(config.ModelType)) switch
        {
            "LlamaTokenizer" or "CodeLlamaTokenizer" or "GemmaTokenizer" => Convention.Llama,
            "DebertaV2Tokenizer" => Convention.Deberta,
            "Qwen2Tokenizer" => Convention.Qwen2,
            _ => sentencePiece ? Convention.Llama : Convention.None,
        };
    }

    /// <summary>
    /// The tokenizer class Hugging Face's AutoTokenizer takes for a <c>model_type</c> whose tokenizer_config.json names
    /// none (DeBERTa-v3's do not), where that class lays special tokens out otherwise than the files alone say.
    /// </summary>
    /// <remarks>
    /// A tokenizer's fact, as in transformers (its tokenizer mapping, not the model's config class), so it stays in
    /// this layer rather than on the family descriptor: the ONNX scorer tokenizes an export with this assembly alone,
    /// without the library and so without the families, and an export records the model type, not a tokenizer class.
    /// </remarks>
    static string? AutoTokenizerClass(string modelType) => modelType switch
    {
        "deberta-v2" => "DebertaV2Tokenizer",
        "qwen2" => "Qwen2Tokenizer",
        _ => null,
    };

    /// <summary>The named special tokens, the added tokens and the ids derived from them, for one checkpoint.</summary>
    sealed class SpecialTokens
    {
        /// <summary>transformers' SPECIAL_TOKENS_ATTRIBUTES order (the order missing tokens are appended in).</summary>
        static readonly string[] Keys = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

        readonly TokenizerFolder _folder;
        readonly TransformerConfig _config;
        readonly string _source;
        readonly Convention _convention;
        readonly IReadOnlyDictionary<string, int> _vocab;
        readonly List<AddedToken> _added;
        readonly (string Bos, string Eos, string Unk)? _pieces;

        public SpecialTokens(TokenizerFolder folder, TransformerConfig config, string source, Convention convention, IReadOnlyDictionary<string, int> vocab,
            List<AddedToken> added, bool appendMissing, (string Bos, string Eos, string Unk)? bosEosPieces)
        {
            _folder = folder;
            _config = config;
            _source = source;
            _convention = convention;
            _vocab = vocab;
            _added = added;
            _pieces = bosEosPieces;
            foreach (var (content, id, lstrip, rstrip) in folder.ExtraAddedTokens())
                if ((id ?? IdOf(content)) is int tokenId && _added.All(a => a.Content != content))
                    _added.Add(new AddedToken(content, tokenId, lstrip, rstrip));
            // A slow (SentencePiece) tokenizer gives a named token its model lacks the next free id, as transformers does.
            int next = Math.Max(vocab.Count == 0 ? 0 : vocab.Values.Max() + 1, _added.Count == 0 ? 0 : _added.Max(a => a.Id) + 1);
            foreach (var key in Keys)
            {
                if (Named(key) is not { } content || _added.Any(a => a.Content == content)) continue;
                var spec = folder.SpecialToken(key);
                if (IdOf(content) is int id) _added.Add(new AddedToken(content, id, spec?.LStrip ?? false, spec?.RStrip ?? false));
                else if (appendMissing) _added.Add(new AddedToken(content, next++, spec?.LStrip ?? false, spec?.RStrip ?? false));
            }
        }

        int? IdOf(string token) =>
            _added.LastOrDefault(a => a.Content == token) is { } a ? a.Id : _vocab.TryGetValue(token, out var id) ? id : null;

        /// <summary>
        /// A named token's text: tokenizer_config.json, special_tokens_map.json, else the convention's default, unless
        /// tokenizer_config.json sets it to null (which overrides the class default in transformers: Qwen2's bos).
        /// </summary>
        string? Named(string key) => _folder.SpecialToken(key)?.Content ?? (ExplicitlyNone(key) ? null : Default(key));

        bool ExplicitlyNone(string key) =>
            _folder.Json(TokenizerFiles.TokenizerConfigJson) is { } config && config.ContainsKey(key) && config[key] is null;

        string? Default(string key) => (_convention, key) switch
        {
            (Convention.Llama, "bos_token") => _pieces?.Bos ?? "<s>",
            (Convention.Llama, "eos_token") => _pieces?.Eos ?? "</s>",
            (Convention.Llama, "unk_token") => _pieces?.Unk ?? "<unk>",
            (Convention.Deberta, "bos_token" or "cls_token") => "[CLS]",
            (Convention.Deberta, "eos_token" or "sep_token") => "[SEP]",
            (Convention.Deberta, "unk_token") => "[UNK]",
            (Convention.Deberta, "pad_token") => "[PAD]",
            (Convention.Deberta, "mask_token") => "[MASK]",
            (Convention.Qwen2, "eos_token" or "unk_token" or "pad_token") => "<|endoftext|>",
            _ => null,
        };

        int? NamedId(string key) => Named(key) is { } content ? IdOf(content) : null;

        int Required(string key) => NamedId(key) ?? throw new CheckpointFormatException(_source,
            Named(key) is { } content ? $"the {key} '{content}' is not in the vocabulary" : $"no {key} is named (tokenizer_config.json, special_tokens_map.json)");

        /// <summary>Llama's template from tokenizer_config.json's add_bos_token (default true) and add_eos_token (default false).</summary>
        public SpecialTokensLayout LlamaLayout() => SpecialTokensLayout.BosEos(
            _folder.ConfigBool("add_bos_token") ?? true ? Required("bos_token") : null,
            _folder.ConfigBool("add_eos_token") ?? false ? Required("eos_token") : null);

        /// <summary>DeBERTa's [CLS] A [SEP] / [CLS] A [SEP] B [SEP] (second text and its [SEP] type 1).</summary>
        public SpecialTokensLayout BertLayout() => SpecialTokensLayout.Bert(Required("cls_token"), Required("sep_token"));

        public FromFilesTextEncoder Build(SpecialTokensLayout layout, (string Token, int? Id)? padding, IEnumerable<int> specialAdded, int maxLength,
            string format, Action<string, bool, List<int>> tokenize, string cutBefore)
        {
            int? eos = NamedId("eos_token") ?? _config.EosTokenId;
            int? pad = NamedId("pad_token") ?? (padding is { } p ? IdOf(p.Token) ?? p.Id : null) ?? _config.PadTokenId;
            bool padIsEos = false;
            if (pad is null)
            {
                pad = eos ?? throw new CheckpointFormatException(_source,
                    "the tokenizer has no pad token and no end-of-sequence token, and config.json has no pad_token_id or eos_token_id; set pad_token_id in config.json to pad batches");
                padIsEos = true;
            }
            var specialIds = Keys.Select(NamedId).OfType<int>().Concat(layout.Ids).Concat(specialAdded).Append(pad.Value)
                .Distinct().Order().ToArray();
            // A text with no special tokens around it and no tokens of its own still needs one (Qwen2's empty text).
            int? emptyText = layout.SingleCount == 0 ? eos ?? pad : null;
            return new FromFilesTextEncoder(new AddedTokenSplitter(_added), tokenize, layout, maxLength, pad.Value, padIsEos, emptyText,
                _config.VocabSize, _source, format, specialIds, NamedId("mask_token"), cutBefore);
        }
    }
}
