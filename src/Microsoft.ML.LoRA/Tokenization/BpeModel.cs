using System.Collections.Concurrent;
using System.Text;
using Microsoft.ML.LoRA.Checkpoints;

namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// Hugging Face tokenizers' BPE model (a tokenizer.json <c>"model": {"type": "BPE"}</c>) as its Rust code runs it:
/// a word starts as one symbol per character (the character's vocabulary entry; else, with byte_fallback, its UTF-8
/// bytes as &lt;0xXX&gt; tokens; else the unknown token, consecutive ones fused when fuse_unk), then the adjacent
/// pair with the lowest merge rank is merged, leftmost first, until no listed pair is left. With ignore_merges a word
/// that is itself in the vocabulary is one token without merging (Llama-3).
/// </summary>
/// <remarks>
/// Written here rather than taken from Microsoft.ML.Tokenizers' <c>BpeTokenizer</c>, which has neither byte fallback
/// (Llama-2, Mistral) nor ignore_merges (Llama-3). Safe to use from several threads at once.
/// </remarks>
internal sealed class BpeModel
{
    /// <summary>Words shorter than this many characters are cached (as Hugging Face does below 256 bytes).</summary>
    const int CachedWordLength = 256;
    const int CacheCapacity = 10_000;

    readonly Dictionary<string, int> _vocab;
    readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    readonly Dictionary<long, (int Rank, int NewId)> _merges;
    readonly int? _unkId;
    readonly bool _fuseUnk;
    readonly bool _ignoreMerges;
    readonly string? _prefix;
    readonly string? _suffix;
    readonly int[]? _byteIds;
    readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    int _cached;

    /// <param name="vocab">Token -> id.</param>
    /// <param name="merges">Merge rules, highest priority first; a pair listed twice keeps its last rank.</param>
    /// <param name="unkToken">The unknown token (null: characters the vocabulary lacks are dropped).</param>
    /// <param name="fuseUnk">Whether consecutive unknown characters become one unknown token.</param>
    /// <param name="byteFallback">Whether a character the vocabulary lacks becomes its UTF-8 bytes' &lt;0xXX&gt; tokens.</param>
    /// <param name="ignoreMerges">Whether a word found whole in the vocabulary skips merging.</param>
    /// <param name="continuingSubwordPrefix">Prefix of every symbol but a word's first (null or empty: none).</param>
    /// <param name="endOfWordSuffix">Suffix of a word's last symbol (null or empty: none).</param>
    /// <param name="problem">Makes the error for a malformed model (names the file).</param>
    public BpeModel(Dictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges, string? unkToken, bool fuseUnk,
        bool byteFallback, bool ignoreMerges, string? continuingSubwordPrefix, string? endOfWordSuffix, Func<string, CheckpointFormatException> problem)
    {
        _vocab = vocab;
        _lookup = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _unkId = unkToken is not null && vocab.TryGetValue(unkToken, out var unk) ? unk : null;
        _fuseUnk = fuseUnk;
        _ignoreMerges = ignoreMerges;
        _prefix = string.IsNullOrEmpty(continuingSubwordPrefix) ? null : continuingSubwordPrefix;
        _suffix = string.IsNullOrEmpty(endOfWordSuffix) ? null : endOfWordSuffix;
        if (byteFallback)
        {
            _byteIds = new int[256];
            for (int b = 0; b < 256; b++) _byteIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out var id) ? id : -1;
        }
        _merges = new Dictionary<long, (int, int)>(merges.Count);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (left, right) = merges[rank];
            if (!vocab.TryGetValue(left, out var leftId)) throw problem($"merge {rank} (\"{left} {right}\") names '{left}', which model.vocab does not have");
            if (!vocab.TryGetValue(right, out var rightId)) throw problem($"merge {rank} (\"{left} {right}\") names '{right}', which model.vocab does not have");
            // As Hugging Face does: the merged token drops the right part's continuing-subword prefix.
            string merged = left + (_prefix is not null && right.StartsWith(_prefix, StringComparison.Ordinal) ? right[_prefix.Length..] : right);
            if (!vocab.TryGetValue(merged, out var newId)) throw problem($"merge {rank} (\"{left} {right}\") makes '{merged}', which model.vocab does not have");
            _merges[Key(leftId, rightId)] = (rank, newId);
        }
    }

    public IReadOnlyDictionary<string, int> Vocab => _vocab;

    static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>Appends the ids of one pre-tokenized word.</summary>
    public void Encode(string word, List<int> ids)
    {
        if (word.Length == 0) return;
        if (_ignoreMerges && _vocab.TryGetValue(word, out var whole))
        {
            ids.Add(whole);
            return;
        }
        if (word.Length < CachedWordLength && _cache.TryGetValue(word, out var cached))
        {
            ids.AddRange(cached);
            return;
        }
        var merged = MergeAll(Symbols(word));
        if (word.Length < CachedWordLength && Volatile.Read(ref _cached) < CacheCapacity && _cache.TryAdd(word, merged))
            Interlocked.Increment(ref _cached);
        ids.AddRange(merged);
    }

    /// <summary>The word's starting symbols, as Hugging Face's <c>merge_word</c> builds them before merging.</summary>
    List<int> Symbols(string word)
    {
        var symbols = new List<int>(word.Length);
        int? pendingUnk = null;
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < word.Length;)
        {
            int width = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            bool first = i == 0, last = i + width >= word.Length;
            int? id = null;
            if (_prefix is null && _suffix is null)
            {
                if (_lookup.TryGetValue(word.AsSpan(i, width), out var found)) id = found;
            }
            else
            {
                string symbol = (first ? "" : _prefix) + word.Substring(i, width) + (last ? _suffix : "");
                if (_vocab.TryGetValue(symbol, out var found)) id = found;
            }
            if (id is int known)
            {
                if (pendingUnk is int u) symbols.Add(u);
                pendingUnk = null;
                symbols.Add(known);
            }
            else if (_byteIds is not null && ByteIds(word, i, width, first, last) is { } bytes)
            {
                // Hugging Face adds the byte tokens without first flushing a pending unknown token; kept as it does.
                symbols.AddRange(bytes);
            }
            else if (_unkId is int unk)
            {
                if (pendingUnk is int u && !_fuseUnk) symbols.Add(u);
                pendingUnk = unk;
            }
            i += width;
        }
        if (pendingUnk is int trailing) symbols.Add(trailing);
        return symbols;
    }

    /// <summary>The &lt;0xXX&gt; ids of the symbol's UTF-8 bytes, or null when the vocabulary lacks one of them.</summary>
    int[]? ByteIds(string word, int start, int width, bool first, bool last)
    {
        string symbol = (first ? "" : _prefix) + word.Substring(start, width) + (last ? _suffix : "");
        var bytes = Encoding.UTF8.GetBytes(symbol);
        var result = new int[bytes.Length];
        for (int b = 0; b < bytes.Length; b++)
        {
            result[b] = _byteIds![bytes[b]];
            if (result[b] < 0) return null;
        }
        return result;
    }

    /// <summary>Hugging Face's <c>Word::merge_all</c>: a min-heap of (rank, position), stale entries skipped.</summary>
    int[] MergeAll(List<int> symbols)
    {
        int n = symbols.Count;
        if (n < 2 || _merges.Count == 0) return symbols.ToArray();
        var c = symbols.ToArray();
        var prev = new int[n];
        var next = new int[n];
        var alive = new bool[n];
        for (int i = 0; i < n; i++)
        {
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
            alive[i] = true;
        }
        var queue = new PriorityQueue<(int Pos, int NewId), (int Rank, int Pos)>(n);
        for (int i = 0; i + 1 < n; i++)
            if (_merges.TryGetValue(Key(c[i], c[i + 1]), out var m)) queue.Enqueue((i, m.NewId), (m.Rank, i));
        while (queue.TryDequeue(out var top, out _))
        {
            int pos = top.Pos;
            if (!alive[pos] || next[pos] < 0) continue;
            int right = next[pos];
            if (!_merges.TryGetValue(Key(c[pos], c[right]), out var current) || current.NewId != top.NewId) continue;
            c[pos] = top.NewId;
            alive[right] = false;
            next[pos] = next[right];
            if (next[pos] >= 0) prev[next[pos]] = pos;
            if (prev[pos] >= 0 && _merges.TryGetValue(Key(c[prev[pos]], c[pos]), out var before))
                queue.Enqueue((prev[pos], before.NewId), (before.Rank, prev[pos]));
            if (next[pos] >= 0 && _merges.TryGetValue(Key(c[pos], c[next[pos]]), out var after))
                queue.Enqueue((pos, after.NewId), (after.Rank, pos));
        }
        var result = new List<int>(n);
        for (int i = 0; i < n; i++) if (alive[i]) result.Add(c[i]);
        return result.ToArray();
    }
}
