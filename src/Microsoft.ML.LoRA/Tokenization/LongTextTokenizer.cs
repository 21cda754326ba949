namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// Tokenizes only as much of a text as truncation can keep. A text longer than <see cref="CharsPerToken"/> characters
/// per wanted token is tokenized in growing prefixes, each cut just before a space, tab or line break that follows a
/// non-whitespace character: both pre-tokenizers (BERT's and GPT-2's) always end a word there, so a prefix's tokens are
/// exactly the first tokens of the whole text. A prefix that yields too few tokens is doubled, so the work stays linear
/// in the part of the text that is kept, and a 1 MB string costs about as much as its first few thousand characters.
/// </summary>
internal sealed class LongTextTokenizer
{
    /// <summary>Characters of text read per wanted token before trying a longer prefix.</summary>
    public const int CharsPerToken = 8;

    readonly Action<string, List<int>> _tokenize;

    /// <param name="tokenize">Appends the tokens of a whole text (no special tokens, no truncation).</param>
    public LongTextTokenizer(Action<string, List<int>> tokenize) => _tokenize = tokenize;

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
        long window = (long)limit * CharsPerToken + 64;
        while (true)
        {
            if (window >= text.Length) return Truncated(All(text), limit);
            int cut = FindCut(text, (int)window);
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
    /// The largest index i &lt;= <paramref name="window"/> where text[i] is a space, tab, newline or carriage return and
    /// text[i - 1] is not whitespace; 0 when there is none.
    /// </summary>
    internal static int FindCut(string text, int window)
    {
        for (int i = Math.Min(window, text.Length - 1); i > 0; i--)
            if (text[i] is ' ' or '\t' or '\n' or '\r' && !char.IsWhiteSpace(text[i - 1])) return i;
        return 0;
    }
}
