namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// The merge list of a SentencePiece BPE model (Llama-2's, Mistral's, TinyLlama's tokenizer.model), derived as
/// transformers' converter to the fast tokenizer derives it (<c>SentencePieceExtractor.extract</c>): every piece that
/// splits into two pieces of the vocabulary gives a merge for each such split (the splits of one piece ordered by the
/// ids of their left, then right, part), and the merges are ranked by the merged piece's score, highest first, ties
/// kept in vocabulary order. Run by <see cref="BpeModel"/> (lowest rank first, leftmost first among equal ranks), this
/// is SentencePiece's own BPE: the adjacent pair whose union scores highest merges first, the leftmost on a tie.
/// </summary>
internal static class SentencePieceBpeMerges
{
    public static List<(string Left, string Right)> Of(IReadOnlyList<(string Piece, float Score, int Type)> pieces, IReadOnlyDictionary<string, int> vocab)
    {
        // Python's dict of piece -> score keeps a piece listed twice once, at its first place, with its last score.
        var lastScore = new Dictionary<string, float>(StringComparer.Ordinal);
        foreach (var (piece, score, _) in pieces) lastScore[piece] = score;
        var merges = new List<(string Left, string Right, float Score, int Order)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (piece, _, _) in pieces)
        {
            if (!seen.Add(piece)) continue;
            var local = new List<(string Left, string Right)>();
            for (int split = 1; split < piece.Length; split++)
            {
                if (char.IsLowSurrogate(piece[split]) && char.IsHighSurrogate(piece[split - 1])) continue;
                string left = piece[..split], right = piece[split..];
                if (vocab.ContainsKey(left) && vocab.ContainsKey(right)) local.Add((left, right));
            }
            local.Sort((a, b) => vocab[a.Left] != vocab[b.Left] ? vocab[a.Left].CompareTo(vocab[b.Left]) : vocab[a.Right].CompareTo(vocab[b.Right]));
            foreach (var (left, right) in local) merges.Add((left, right, lastScore[piece], merges.Count));
        }
        // A stable sort on the score, highest first.
        merges.Sort((a, b) => a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Order.CompareTo(b.Order));
        return merges.Select(m => (m.Left, m.Right)).ToList();
    }
}
