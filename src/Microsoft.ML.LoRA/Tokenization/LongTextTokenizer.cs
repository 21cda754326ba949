namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// Tokenizes only as much of a text as truncation can keep. A text longer than <see cref="CharsPerToken"/> characters
/// per wanted token is tokenized in growing prefixes, each cut just before a space, tab or line break that follows a
/// non-whitespace character: both pre-tokenizers (BERT's and GPT-2's) always end a word there, so a prefix's tokens are
/// exactly the first tokens of the whole text. A prefix that yields too few tokens is doubled, so the work stays linear
/// in the part of the text that is kept, and a 1 MB string costs about as much as its first few thousand characters.
/// A tokenizer for which only some of those characters end a word (Llama-3's split joins punctuation with the line
/// breaks after it) names its own cut characters; one with none is always given the whole text.
/// </summary>
internal sealed class LongTextTokenizer
{
    /// <summary>Characters of text read per wanted token before trying a longer prefix.</summary>
    public const int CharsPerToken = 8;

    /// <summary>The characters a prefix may be cut before when no others are named.</summary>
    public const string DefaultCutCharacters = " \t\n\r";

    readonly Action<string, List<int>> _tokenize;
    readonly string _cutBefore;

    /// <param name="tokenize">Appends the tokens of a whole text (no special tokens, no truncation).</param>
    /// <param name="cutBefore">
    /// Whitespace characters before which the tokenizer always ends a word (when a non-whitespace character precedes
    /// them); empty: no prefix is ever safe, the whole text is tokenized.
    /// </param>
    public LongTextTokenizer(Action<string, List<int>> tokenize, string cutBefore = DefaultCutCharacters)
    {
        _tokenize = tokenize;
        _cutBefore = cutBefore;
    }

    /// <summary>All tokens of <paramref name="text"/>.</summary>
    public List<int> All(string text)
    {
        var ids = new List<int>();
        if (text.Length > 0) _tokenize(text, ids);
        return ids;
    }

    /// <summary>The first <c>min(limit, total)</c> tokens of <paramref name="text"/>.</summary>
    public List<int> AtMost(string text, int limit)
    {
        if (limit <= 0 || text.Length == 0) return new List<int>();
        if (_cutBefore.Length == 0) return Truncated(All(text), limit);
        long window = (long)limit * CharsPerToken + 64;
        while (true)
        {
            if (window >= text.Length) return Truncated(All(text), limit);
            int cut = FindCut(text, (int)window, _cutBefore);
            if (cut > 0)
            {
                var ids = new List<int>();
                _tokenize(text.Substring(0, cut), ids);
                if (ids.Count >= limit) return Truncated(ids, limit);
            }
            window *= 2;
        }
    }

    static List<int> Truncated(List<int> ids, int limit)
    {
        if (ids.Count > limit) ids.RemoveRange(limit, ids.Count - limit);
        return ids;
    }

    /// <summary>
    /// The largest index i &lt;= <paramref name="window"/> where text[i] is one of <paramref name="cutBefore"/> (space,
    /// tab, newline, carriage return unless told) and text[i - 1] is not whitespace; 0 when there is none.
    /// </summary>
    internal static int FindCut(string text, int window, string cutBefore = DefaultCutCharacters)
    {
        for (int i = Math.Min(window, text.Length - 1); i > 0; i--)
            if (cutBefore.Contains(text[i]) && !char.IsWhiteSpace(text[i - 1])) return i;
        return 0;
    }
}
