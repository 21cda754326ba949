using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.Tokenizers;

namespace Microsoft.ML.LoRA.Tokenization;

// Interim WordPiece-only factory; replaced by the full tokenizer layer (WordPiece + byte-level BPE).
public static class TextEncoders
{
    public static readonly IReadOnlyList<string> TokenizerFileNames = new[]
        { "vocab.txt", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json" };

    public static ITextEncoder FromFolder(string folder, TransformerConfig config, int? maxLength = null)
    {
        var vocab = Path.Combine(folder, "vocab.txt");
        if (!File.Exists(vocab)) throw new FileNotFoundException($"No tokenizer in {folder} (looked for vocab.txt)", vocab);
        int limit = config.MaxPositions;
        return new InterimWordPiece(BertTokenizer.Create(vocab, new BertOptions { LowerCaseBeforeTokenization = true }), Math.Min(maxLength ?? limit, limit));
    }

    sealed class InterimWordPiece(BertTokenizer tokenizer, int maxLength) : ITextEncoder
    {
        public int MaxLength => maxLength;
        public int PadTokenId => tokenizer.PaddingTokenId;
        public EncodedText Encode(string? text, string? pair = null)
        {
            var a = tokenizer.EncodeToIds(text ?? "", addSpecialTokens: false).ToList();
            var b = pair is null ? null : tokenizer.EncodeToIds(pair, addSpecialTokens: false).ToList();
            int budget = maxLength - (b is null ? 2 : 3);
            while (a.Count + (b?.Count ?? 0) > budget)
            {
                if (b is not null && b.Count > a.Count) b.RemoveAt(b.Count - 1); else a.RemoveAt(a.Count - 1);
            }
            var ids = new List<int> { tokenizer.ClassificationTokenId };
            ids.AddRange(a);
            ids.Add(tokenizer.SeparatorTokenId);
            var types = Enumerable.Repeat(0, ids.Count).ToList();
            if (b is not null)
            {
                ids.AddRange(b);
                ids.Add(tokenizer.SeparatorTokenId);
                types.AddRange(Enumerable.Repeat(1, b.Count + 1));
            }
            return new EncodedText(ids.ToArray(), types.ToArray());
        }
    }
}
