namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// Splits raw text around its added tokens the way Hugging Face's added vocabulary does: matches are found in the
/// text before any normalization, case-sensitively, leftmost first and longest on a tie; a token with lstrip / rstrip
/// also swallows the whitespace beside it. The text between matches is tokenized by the model separately.
/// </summary>
internal sealed class AddedTokenSplitter
{
    readonly AddedToken[] _tokens;

    public AddedTokenSplitter(IEnumerable<AddedToken> tokens)
    {
        // One entry per text (a later definition replaces an earlier one, as in a dictionary); empty texts never match.
        var byContent = new Dictionary<string, AddedToken>(StringComparer.Ordinal);
        foreach (var token in tokens)
            if (token.Content.Length > 0) byContent[token.Content] = token;
        _tokens = byContent.Values.ToArray();
    }

    /// <summary>The tokens matched, one per distinct text.</summary>
    public IReadOnlyList<AddedToken> Tokens => _tokens;

    /// <summary>
    /// Calls <paramref name="onText"/> for each stretch of ordinary text (never empty) and <paramref name="onToken"/>
    /// for each added token, in order.
    /// </summary>
    public void Split(string text, Action<string> onText, Action<int> onToken) =>
        Split(text, (segment, _) => onText(segment), onToken);

    /// <summary>
    /// As <see cref="Split(string, Action{string}, Action{int})"/>, also giving each stretch's offset in
    /// <paramref name="text"/> (Metaspace's "first" prepend scheme adds its ▁ only to a stretch at offset 0).
    /// </summary>
    public void Split(string text, Action<string, int> onText, Action<int> onToken)
    {
        if (_tokens.Length == 0)
        {
            if (text.Length > 0) onText(text, 0);
            return;
        }
        // next[i]: where _tokens[i] next occurs at or after the search position (-1: nowhere further).
        var next = new int[_tokens.Length];
        for (int i = 0; i < _tokens.Length; i++) next[i] = text.IndexOf(_tokens[i].Content, StringComparison.Ordinal);
        int position = 0;
        while (true)
        {
            int best = -1;
            for (int i = 0; i < _tokens.Length; i++)
            {
                if (next[i] >= 0 && next[i] < position)
                    next[i] = text.IndexOf(_tokens[i].Content, position, StringComparison.Ordinal);
                if (next[i] < 0) continue;
                if (best < 0 || next[i] < next[best] || (next[i] == next[best] && _tokens[i].Content.Length > _tokens[best].Content.Length))
                    best = i;
            }
            if (best < 0) break;
            var token = _tokens[best];
            int start = next[best], end = start + token.Content.Length;
            if (token.LStrip) while (start > position && char.IsWhiteSpace(text[start - 1])) start--;
            if (token.RStrip) while (end < text.Length && char.IsWhiteSpace(text[end])) end++;
            if (start > position) onText(text.Substring(position, start - position), position);
            onToken(token.Id);
            position = end;
        }
        if (position < text.Length) onText(position == 0 ? text : text.Substring(position), position);
    }
}
