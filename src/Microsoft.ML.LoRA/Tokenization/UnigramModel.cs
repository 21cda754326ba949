using System.Text;

namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// Hugging Face tokenizers' Unigram model (a tokenizer.json <c>"model": {"type": "Unigram"}</c>, DeBERTa-v3's) as its
/// Rust code runs it: the Viterbi path of highest total score through every vocabulary piece that matches the word
/// (shorter pieces tried first, a later candidate winning only with a strictly higher score); a character no piece
/// starts with becomes an unknown node scored 10 below the lowest piece score; consecutive unknown nodes are fused into
/// one unknown token, or with byte_fallback become their UTF-8 bytes' &lt;0xXX&gt; tokens.
/// </summary>
/// <remarks>Safe to use from several threads at once.</remarks>
internal sealed class UnigramModel
{
    /// <summary>Hugging Face's (and SentencePiece's) kUnkPenalty.</summary>
    const double UnknownPenalty = 10.0;

    readonly double[] _scores;
    readonly Dictionary<string, int> _ids;
    readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    readonly int _maxPieceLength;
    readonly int? _unkId;
    readonly bool _byteFallback;
    readonly double _unknownScore;
    readonly string _source;

    /// <param name="pieces">The vocabulary in id order, with scores.</param>
    /// <param name="unkId">The unknown token's id (null: a character no piece covers is an error, as in Hugging Face).</param>
    /// <param name="byteFallback">Whether unknown text becomes &lt;0xXX&gt; tokens (when the vocabulary has them all).</param>
    /// <param name="source">Names the file in errors.</param>
    public UnigramModel(IReadOnlyList<(string Piece, double Score)> pieces, int? unkId, bool byteFallback, string source)
    {
        _scores = new double[pieces.Count];
        _ids = new Dictionary<string, int>(pieces.Count, StringComparer.Ordinal);
        double min = double.PositiveInfinity;
        for (int id = 0; id < pieces.Count; id++)
        {
            var (piece, score) = pieces[id];
            _scores[id] = score;
            _ids[piece] = id; // a piece listed twice keeps its last id, as Hugging Face's map does
            _maxPieceLength = Math.Max(_maxPieceLength, piece.Length);
            min = Math.Min(min, score);
        }
        _lookup = _ids.GetAlternateLookup<ReadOnlySpan<char>>();
        _unkId = unkId;
        _byteFallback = byteFallback;
        _unknownScore = min - UnknownPenalty;
        _source = source;
    }

    public IReadOnlyDictionary<string, int> Vocab => _ids;

    /// <summary>Appends the ids of one pre-tokenized word.</summary>
    public void Encode(string word, List<int> ids)
    {
        int n = word.Length;
        if (n == 0) return;
        // best*[end]: the best path that ends at UTF-16 position end (only code point boundaries are ever reached).
        var bestScore = new double[n + 1];
        var bestStart = new int[n + 1];
        var bestId = new int[n + 1];
        Array.Fill(bestStart, -1);
        for (int start = 0; start < n;)
        {
            int width = char.IsHighSurrogate(word[start]) && start + 1 < n && char.IsLowSurrogate(word[start + 1]) ? 2 : 1;
            double scoreHere = bestScore[start];
            bool singleCharacterPiece = false;
            int maxEnd = Math.Min(n, start + _maxPieceLength);
            for (int end = start + 1; end <= maxEnd; end++)
            {
                if (end < n && char.IsLowSurrogate(word[end]) && char.IsHighSurrogate(word[end - 1])) continue;
                if (!_lookup.TryGetValue(word.AsSpan(start, end - start), out var id)) continue;
                double candidate = _scores[id] + scoreHere;
                if (bestStart[end] < 0 || candidate > bestScore[end])
                {
                    bestScore[end] = candidate;
                    bestStart[end] = start;
                    bestId[end] = id;
                }
                if (end - start == width) singleCharacterPiece = true;
            }
            if (!singleCharacterPiece)
            {
                int end = start + width;
                double candidate = _unknownScore + scoreHere;
                if (bestStart[end] < 0 || candidate > bestScore[end])
                {
                    bestScore[end] = candidate;
                    bestStart[end] = start;
                    bestId[end] = _unkId ?? throw new InvalidOperationException(
                        $"The Unigram tokenizer in {_source} has no unk_id, and the text has a character none of its pieces covers ('{word.Substring(start, width)}')");
                }
            }
            start += width;
        }

        // Backtrack; runs of unknown nodes become one piece (Hugging Face's fuse_unk, always on for Unigram).
        var spans = new List<(int Start, int End)>();
        int endsAt = n, unknownEnd = -1;
        while (endsAt > 0)
        {
            int start = bestStart[endsAt];
            if (bestId[endsAt] == _unkId)
            {
                if (unknownEnd < 0) unknownEnd = endsAt;
            }
            else
            {
                if (unknownEnd >= 0) spans.Add((endsAt, unknownEnd));
                unknownEnd = -1;
                spans.Add((start, endsAt));
            }
            endsAt = start;
        }
        if (unknownEnd >= 0) spans.Add((0, unknownEnd));
        for (int s = spans.Count - 1; s >= 0; s--)
        {
            var piece = word.AsSpan(spans[s].Start, spans[s].End - spans[s].Start);
            if (_lookup.TryGetValue(piece, out var id)) ids.Add(id);
            else if (!(_byteFallback && TryAddBytes(piece, ids))) ids.Add(_unkId!.Value);
        }
    }

    bool TryAddBytes(ReadOnlySpan<char> piece, List<int> ids)
    {
        var bytes = Encoding.UTF8.GetBytes(piece.ToString());
        var byteIds = new int[bytes.Length];
        for (int b = 0; b < bytes.Length; b++)
            if (!_ids.TryGetValue($"<0x{bytes[b]:X2}>", out byteIds[b])) return false;
        ids.AddRange(byteIds);
        return true;
    }
}
