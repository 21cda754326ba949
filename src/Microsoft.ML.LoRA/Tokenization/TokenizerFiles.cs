namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>The names of the tokenizer files a Hugging Face model folder may hold.</summary>
public static class TokenizerFiles
{
    /// <summary>WordPiece vocabulary, one token a line, id = line index (BERT, DistilBERT).</summary>
    public const string VocabTxt = "vocab.txt";

    /// <summary>Byte-level BPE vocabulary, a JSON object token -> id (RoBERTa, GPT-2).</summary>
    public const string VocabJson = "vocab.json";

    /// <summary>Byte-level BPE merge rules, "a b" a line, highest priority first (RoBERTa, GPT-2).</summary>
    public const string MergesTxt = "merges.txt";

    /// <summary>The Hugging Face <c>tokenizers</c> file: model, normalizer, pre-tokenizer, post-processor, added tokens.</summary>
    public const string TokenizerJson = "tokenizer.json";

    /// <summary>Transformers' tokenizer settings (do_lower_case, add_prefix_space, special tokens, ...).</summary>
    public const string TokenizerConfigJson = "tokenizer_config.json";

    /// <summary>Transformers' special token names (cls_token, sep_token, pad_token, ...).</summary>
    public const string SpecialTokensMapJson = "special_tokens_map.json";

    /// <summary>Tokens added after training, a JSON object token -> id.</summary>
    public const string AddedTokensJson = "added_tokens.json";

    /// <summary>A SentencePiece model (Llama-2, Mistral, TinyLlama), read when the folder has no tokenizer.json.</summary>
    public const string TokenizerModel = "tokenizer.model";

    /// <summary>A SentencePiece model under DeBERTa-v2/v3's name, read when the folder has no tokenizer.json.</summary>
    public const string SpmModel = "spm.model";

    /// <summary>Every tokenizer-related file name, for copying a tokenizer along with a model.</summary>
    public static IReadOnlyList<string> All { get; } = new[]
    {
        VocabTxt, VocabJson, MergesTxt, TokenizerJson, TokenizerConfigJson, SpecialTokensMapJson, AddedTokensJson, TokenizerModel, SpmModel,
    };
}
