using Microsoft.ML.LoRA.Checkpoints;

namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>Creates the <see cref="ITextEncoder"/> that matches a model's Hugging Face tokenizer.</summary>
public static class TextEncoders
{
    /// <summary>Every tokenizer-related file name a model folder may hold (for copying a tokenizer with a model).</summary>
    public static IReadOnlyList<string> TokenizerFileNames => TokenizerFiles.All;

    /// <summary>
    /// Loads the tokenizer in <paramref name="folder"/> for a model of <paramref name="config"/>'s family: WordPiece
    /// for BERT and DistilBERT (tokenizer.json or vocab.txt), byte-level BPE for RoBERTa and GPT-2 (tokenizer.json or
    /// vocab.json + merges.txt), and for families whose checkpoints bring their own tokenizer (DeBERTa-v3, the LLaMA
    /// family, Qwen2) whatever tokenizer.json holds, else tokenizer.model or spm.model (<see cref="FromFilesTextEncoder"/>).
    /// </summary>
    /// <param name="folder">The model (or tokenizer) folder.</param>
    /// <param name="config">The model's config; gives the family, the position limit and pad / end-of-text ids.</param>
    /// <param name="maxLength">Most tokens per example, special tokens included; defaults to <see cref="ModelMaxLength"/>.</param>
    /// <remarks>
    /// Ids match Hugging Face's fast tokenizers, truncation included (longest first for pairs). Text longer than the
    /// encoder can keep is never an error: only a prefix of it is tokenized (see <see cref="LongTextTokenizer"/>), so
    /// a 1 MB string costs about as much as its first few thousand characters. Text without any space, tab or line
    /// break (without any space or tab for Llama-3 and Qwen2), text for a tokenizer.json whose split pattern this
    /// library has not checked, and pairs whose two texts both overflow (their full lengths decide who keeps the odd
    /// token), are tokenized whole: linear in their length.
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxLength"/> is above the model's limit or below the minimum.</exception>
    /// <exception cref="FileNotFoundException">The folder has no tokenizer files for the family.</exception>
    /// <exception cref="CheckpointFormatException">A tokenizer file is malformed or does not fit the family.</exception>
    public static ITextEncoder FromFolder(string folder, TransformerConfig config, int? maxLength = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        ArgumentNullException.ThrowIfNull(config);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Tokenizer folder not found: {Path.GetFullPath(folder)}");
        return Create(new TokenizerFolder(folder), config, maxLength);
    }

    /// <summary>
    /// Loads the tokenizer from files held in memory by name (a saved model's tokenizer entries), as
    /// <see cref="FromFolder"/> loads a folder's; <paramref name="label"/> names them in messages.
    /// </summary>
    public static ITextEncoder FromFiles(IReadOnlyDictionary<string, byte[]> files, string label, TransformerConfig config, int? maxLength = null)
    {
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(config);
        return Create(new TokenizerFolder(label, files), config, maxLength);
    }

    static ITextEncoder Create(TokenizerFolder files, TransformerConfig config, int? maxLength)
    {
        int limit = ModelMaxLength(config);
        // A tokenizer read from the checkpoint's files knows its special tokens only once read; it checks the minimum itself.
        int minimum = config.Tokenizer is TokenizerKind.Gpt2ByteLevelBpe or TokenizerKind.FromFiles ? 1 : 2;
        int length = maxLength ?? limit;
        if (length > limit)
            throw new ArgumentOutOfRangeException(nameof(maxLength), length,
                $"maxLength {length} is more than the {limit} tokens a {config.ModelType} model can take ({LimitReason(config)})");
        if (length < minimum)
            throw new ArgumentOutOfRangeException(nameof(maxLength), length,
                $"maxLength must be at least {minimum} for a {config.ModelType} model{(minimum > 1 ? " (room for its special tokens)" : "")}; its limit is {limit} tokens ({LimitReason(config)})");
        return config.Tokenizer switch
        {
            TokenizerKind.WordPiece => WordPieceTextEncoder.Load(files, config, length),
            TokenizerKind.RobertaByteLevelBpe or TokenizerKind.Gpt2ByteLevelBpe => ByteLevelBpeTextEncoder.Load(files, config, length),
            TokenizerKind.FromFiles => FromFilesTextEncoder.Load(files, config, length),
            _ => throw new NotSupportedException($"No tokenizer for {config.Tokenizer} ({config.ModelType})"),
        };
    }

    /// <summary>
    /// The most tokens a model can take: its max positions less the positions it reserves (RoBERTa's start after the
    /// padding index, 2 fewer: <see cref="TransformerConfig.PositionOffset"/>).
    /// </summary>
    public static int ModelMaxLength(TransformerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        int limit = config.MaxPositions - config.PositionOffset;
        if (limit < 1) throw new CheckpointFormatException(config.Source, $"max positions {config.MaxPositions} leave no room for tokens ({LimitReason(config)})");
        return limit;
    }

    /// <summary>Whether the model takes token type ids (BERT does; DistilBERT, RoBERTa and GPT-2 tokenizers do not return them).</summary>
    public static bool TakesTokenTypeIds(TransformerConfig config) => config.TakesTokenTypes;

    static string LimitReason(TransformerConfig config) => config.PositionOffset > 0
        ? $"{config.MaxPositionsField} {config.MaxPositions} minus {config.PositionOffset} for the padding offset"
        : $"{config.MaxPositionsField} {config.MaxPositions}";

    /// <summary>The error for a folder without the family's tokenizer files, listing what each family looks for.</summary>
    internal static FileNotFoundException MissingFiles(TokenizerFolder folder, TransformerConfig config)
    {
        string wanted = config.Tokenizer switch
        {
            TokenizerKind.WordPiece => $"{TokenizerFiles.TokenizerJson} or {TokenizerFiles.VocabTxt}",
            TokenizerKind.FromFiles => $"{TokenizerFiles.TokenizerJson}, {TokenizerFiles.TokenizerModel} or {TokenizerFiles.SpmModel}",
            _ => $"{TokenizerFiles.TokenizerJson} or {TokenizerFiles.VocabJson} + {TokenizerFiles.MergesTxt}",
        };
        return new FileNotFoundException(
            $"No tokenizer for the {config.ModelType} model in {folder.Directory}: looked for {wanted}. " +
            $"(BERT/DistilBERT use {TokenizerFiles.TokenizerJson} or {TokenizerFiles.VocabTxt}; RoBERTa/GPT-2 use " +
            $"{TokenizerFiles.TokenizerJson} or {TokenizerFiles.VocabJson} + {TokenizerFiles.MergesTxt}; DeBERTa-v3 and the " +
            $"LLaMA family use {TokenizerFiles.TokenizerJson}, else {TokenizerFiles.TokenizerModel} or {TokenizerFiles.SpmModel}.)",
            folder.PathOf(TokenizerFiles.TokenizerJson));
    }
}
