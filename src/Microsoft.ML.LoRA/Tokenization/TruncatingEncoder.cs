namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// The part every encoder shares: tokenize the text (and pair) no further than truncation can keep, truncate to
/// <see cref="MaxLength"/> minus the special tokens (longest first for pairs, as Hugging Face tokenizers do), then add
/// the special tokens.
/// </summary>
internal sealed class TruncatingEncoder
{
    readonly LongTextTokenizer _tokenizer;
    readonly SpecialTokensLayout _layout;
    readonly int? _emptyTextTokenId;
    readonly int _vocabSize;
    readonly string _description;

    /// <param name="tokenize">Appends the tokens of a text, without special tokens.</param>
    /// <param name="layout">The special tokens around a text or pair.</param>
    /// <param name="maxLength">Most tokens per example, special tokens included.</param>
    /// <param name="emptyTextTokenId">The token an example with no tokens at all becomes (GPT-2's end of text), if any.</param>
    /// <param name="vocabSize">The model's vocabulary size; an id at or above it is an error (0: not checked).</param>
    /// <param name="description">Names the tokenizer in error messages.</param>
    /// <param name="cutBefore">Where a long text's prefix may be cut (see <see cref="LongTextTokenizer"/>).</param>
    public TruncatingEncoder(Action<string, List<int>> tokenize, SpecialTokensLayout layout, int maxLength, int? emptyTextTokenId,
        int vocabSize, string description, string cutBefore = LongTextTokenizer.DefaultCutCharacters)
    {
        if (maxLength < Math.Max(1, layout.SingleCount))
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength,
                $"{description} needs at least {Math.Max(1, layout.SingleCount)} tokens per example (its special tokens)");
        _tokenizer = new LongTextTokenizer(tokenize, cutBefore);
        _layout = layout;
        MaxLength = maxLength;
        _emptyTextTokenId = emptyTextTokenId;
        _vocabSize = vocabSize;
        _description = description;
    }

    public int MaxLength { get; }

    public SpecialTokensLayout Layout => _layout;

    public EncodedText Encode(string? text, string? pair)
    {
        text ??= "";
        EncodedText encoded;
        if (pair is null)
        {
            encoded = _layout.Build(_tokenizer.AtMost(text, MaxLength - _layout.SingleCount), null);
        }
        else
        {
            int budget = MaxLength - _layout.PairCount;
            if (budget < 0)
                throw new InvalidOperationException(
                    $"MaxLength {MaxLength} is too small for a text pair: {_description} adds {_layout.PairCount} special tokens to a pair");
            // One token over the budget tells whether a text must be cut; only when both must be cut does the result
            // depend on which one is longer, and then their full lengths are counted.
            var first = _tokenizer.AtMost(text, budget + 1);
            var second = _tokenizer.AtMost(pair, budget + 1);
            if (first.Count + second.Count > budget)
            {
                int firstLength = first.Count, secondLength = second.Count;
                if (firstLength > budget && secondLength > budget)
                {
                    firstLength = _tokenizer.All(text).Count;
                    secondLength = _tokenizer.All(pair).Count;
                }
                var (keepFirst, keepSecond) = LongestFirstTruncation.Lengths(firstLength, secondLength, budget);
                first.RemoveRange(keepFirst, first.Count - keepFirst);
                second.RemoveRange(keepSecond, second.Count - keepSecond);
            }
            encoded = _layout.Build(first, second);
        }
        if (encoded.Length == 0 && _emptyTextTokenId is int fallback) encoded = new EncodedText([fallback], [0]);
        CheckIds(encoded.InputIds);
        return encoded;
    }

    void CheckIds(int[] ids)
    {
        if (_vocabSize <= 0) return;
        foreach (var id in ids)
            if (id < 0 || id >= _vocabSize)
                throw new InvalidOperationException(
                    $"{_description} produced token id {id}, outside the model's vocabulary of {_vocabSize} tokens: the tokenizer does not match the model (config vocab_size)");
    }
}
