using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Microsoft.ML.LoRA.Checkpoints;

namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// SentencePiece's <c>precompiled_charsmap</c>: the normalization rules (nmt_nfkc for DeBERTa-v3) compiled into a
/// little-endian uint32 trie size, a Darts double-array trie over UTF-8 byte strings whose values are offsets into the
/// blob that follows, and that blob of NUL-terminated replacement strings. Two readers use it differently, and both are
/// here: SentencePiece itself takes the longest rule matching at each position (<see cref="LongestMatch"/>); Hugging
/// Face's <c>Precompiled</c> normalizer rewrites each grapheme cluster under 6 UTF-8 bytes by the shortest rule that
/// matches its start, else each of its characters alone (<see cref="NormalizeLikeHuggingFace"/>).
/// </summary>
internal sealed class PrecompiledCharsmap
{
    readonly uint[] _units;
    readonly byte[] _strings;
    readonly string?[] _ascii = new string?[128];

    PrecompiledCharsmap(uint[] units, byte[] strings)
    {
        _units = units;
        _strings = strings;
        // ASCII characters are nearly all of most text; their rewrites are looked up once.
        for (int c = 0; c < 128; c++) _ascii[c] = Transform(((char)c).ToString());
    }

    /// <summary>Reads a charsmap blob; <paramref name="source"/> and <paramref name="field"/> name it in errors.</summary>
    public static PrecompiledCharsmap Parse(ReadOnlySpan<byte> blob, string source, string field)
    {
        if (blob.Length < 4) throw new CheckpointFormatException(source, $"{field} is {blob.Length} bytes, too short for a precompiled charsmap");
        uint trieSize = BinaryPrimitives.ReadUInt32LittleEndian(blob);
        if (trieSize % 4 != 0 || trieSize > (uint)(blob.Length - 4))
            throw new CheckpointFormatException(source, $"{field} declares a {trieSize}-byte trie in a {blob.Length}-byte charsmap");
        var units = new uint[trieSize / 4];
        for (int i = 0; i < units.Length; i++) units[i] = BinaryPrimitives.ReadUInt32LittleEndian(blob.Slice(4 + 4 * i));
        if (units.Length == 0) throw new CheckpointFormatException(source, $"{field} has an empty trie");
        return new PrecompiledCharsmap(units, blob.Slice(4 + (int)trieSize).ToArray());
    }

    static bool HasLeaf(uint unit) => ((unit >> 8) & 1) == 1;
    static int Value(uint unit) => (int)(unit & 0x7FFF_FFFF);
    static uint Label(uint unit) => unit & 0x8000_00FF;
    static int Offset(uint unit) => (int)((unit >> 10) << (int)((unit & (1u << 9)) >> 6));

    /// <summary>
    /// Darts' common prefix search over the rules that are prefixes of <paramref name="key"/>: the value of the shortest
    /// one (<paramref name="longest"/> false) or the longest, and its length in bytes; -1 when none matches. Indexes
    /// outside the trie end the search (a damaged trie matches less rather than failing).
    /// </summary>
    int Search(ReadOnlySpan<byte> key, bool longest, out int length)
    {
        int found = -1;
        length = 0;
        int node = Offset(_units[0]);
        for (int i = 0; i < key.Length; i++)
        {
            byte c = key[i];
            if (c == 0) break;
            node ^= c;
            if ((uint)node >= (uint)_units.Length) break;
            uint unit = _units[node];
            if (Label(unit) != c) break;
            node ^= Offset(unit);
            if ((uint)node >= (uint)_units.Length) break;
            if (!HasLeaf(unit)) continue;
            found = Value(_units[node]);
            length = i + 1;
            if (!longest) break;
        }
        return found;
    }

    /// <summary>The NUL-terminated replacement string at a rule's value (empty when the offset is past the blob).</summary>
    ReadOnlySpan<byte> Replacement(int offset)
    {
        if ((uint)offset >= (uint)_strings.Length) return ReadOnlySpan<byte>.Empty;
        var rest = _strings.AsSpan(offset);
        int end = rest.IndexOf((byte)0);
        return end < 0 ? rest : rest[..end];
    }

    /// <summary>SentencePiece's rule for the start of <paramref name="utf8"/>: the longest match, its length and replacement.</summary>
    public bool LongestMatch(ReadOnlySpan<byte> utf8, out int length, out ReadOnlySpan<byte> replacement)
    {
        int value = Search(utf8, longest: true, out length);
        replacement = value >= 0 ? Replacement(value) : ReadOnlySpan<byte>.Empty;
        return value >= 0;
    }

    /// <summary>Hugging Face's <c>transform</c>: the replacement of the shortest rule matching the chunk's start, else null.</summary>
    string? Transform(string chunk)
    {
        int value = Search(Encoding.UTF8.GetBytes(chunk), longest: false, out _);
        return value < 0 ? null : Encoding.UTF8.GetString(Replacement(value));
    }

    /// <summary>Hugging Face's <c>Precompiled</c> normalizer (grapheme clusters as .NET segments them, UAX #29).</summary>
    public string NormalizeLikeHuggingFace(string text)
    {
        var result = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length;)
        {
            int length = StringInfo.GetNextTextElementLength(text, i);
            if (length == 1 && text[i] < 128)
            {
                result.Append(_ascii[text[i]] ?? text[i].ToString());
                i++;
                continue;
            }
            string grapheme = text.Substring(i, length);
            i += length;
            if (Encoding.UTF8.GetByteCount(grapheme) < 6 && Transform(grapheme) is { } whole)
            {
                result.Append(whole);
                continue;
            }
            for (int j = 0; j < grapheme.Length;)
            {
                int width = char.IsHighSurrogate(grapheme[j]) && j + 1 < grapheme.Length && char.IsLowSurrogate(grapheme[j + 1]) ? 2 : 1;
                string character = grapheme.Substring(j, width);
                result.Append(Transform(character) ?? character);
                j += width;
            }
        }
        return result.ToString();
    }
}
