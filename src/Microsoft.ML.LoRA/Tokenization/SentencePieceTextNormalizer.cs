using System.Text;

namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// SentencePiece's normalizer (normalizer.cc) over a model file's normalizer spec: user-defined pieces pass through
/// untouched, the rest is rewritten by the longest precompiled-charsmap rule at each position; with
/// remove_extra_whitespaces leading, trailing and repeated spaces go; add_dummy_prefix puts a space first (last with
/// treat_whitespace_as_suffix); escape_whitespaces writes spaces as ▁.
/// </summary>
/// <remarks>
/// Done here rather than by Microsoft.ML.Tokenizers, whose text path for BPE models ignores the charsmap and turns a
/// one-character text into nothing when remove_extra_whitespaces is set.
/// </remarks>
internal sealed class SentencePieceTextNormalizer
{
    /// <summary>SentencePiece's escaped space, ▁.</summary>
    internal const string SpaceSymbol = "\u2581";

    readonly PrecompiledCharsmap? _charsmap;
    readonly byte[][] _userDefined;
    readonly bool _addDummyPrefix, _removeExtraWhitespaces, _escapeWhitespaces, _treatWhitespaceAsSuffix;

    public SentencePieceTextNormalizer(SentencePieceModelFile model)
    {
        _charsmap = model.PrecompiledCharsmap.Length > 0
            ? PrecompiledCharsmap.Parse(model.PrecompiledCharsmap, model.Path, "normalizer_spec.precompiled_charsmap")
            : null;
        // Longest first, so the first match is the longest (SentencePiece's prefix matcher).
        _userDefined = model.Pieces.Where(p => p.Type == SentencePieceModelFile.UserDefined)
            .Select(p => Encoding.UTF8.GetBytes(p.Piece)).OrderByDescending(b => b.Length).ToArray();
        _addDummyPrefix = model.AddDummyPrefix;
        _removeExtraWhitespaces = model.RemoveExtraWhitespaces;
        _escapeWhitespaces = model.EscapeWhitespaces;
        _treatWhitespaceAsSuffix = model.TreatWhitespaceAsSuffix;
    }

    static readonly byte[] Space = [(byte)' '];
    static readonly byte[] EscapedSpace = Encoding.UTF8.GetBytes(SpaceSymbol);

    /// <summary>The normalized text (empty when nothing but whitespace is left).</summary>
    /// <param name="text">The text.</param>
    /// <param name="addDummyPrefix">False to leave out the model's dummy prefix (transformers' non-legacy Llama tokenizer
    /// adds it only at the start of the whole text).</param>
    public string Normalize(string text, bool addDummyPrefix = true)
    {
        if (text.Length == 0) return "";
        ReadOnlySpan<byte> input = Encoding.UTF8.GetBytes(text);
        if (_removeExtraWhitespaces)
        {
            while (!input.IsEmpty)
            {
                var piece = NormalizePrefix(input, out int consumed);
                if (!piece.SequenceEqual(Space)) break;
                input = input[consumed..];
            }
        }
        if (input.IsEmpty) return "";

        var output = new List<byte>(input.Length + 8);
        var space = _escapeWhitespaces ? EscapedSpace : Space;
        bool dummyPrefix = _addDummyPrefix && addDummyPrefix;
        if (!_treatWhitespaceAsSuffix && dummyPrefix) output.AddRange(space);
        bool previousIsSpace = _removeExtraWhitespaces;
        while (!input.IsEmpty)
        {
            var piece = NormalizePrefix(input, out int consumed);
            while (previousIsSpace && !piece.IsEmpty && piece[0] == (byte)' ') piece = piece[1..];
            if (!piece.IsEmpty)
            {
                foreach (var b in piece)
                {
                    if (_escapeWhitespaces && b == (byte)' ') output.AddRange(EscapedSpace);
                    else output.Add(b);
                }
                previousIsSpace = piece[^1] == (byte)' ';
            }
            input = input[consumed..];
            if (!_removeExtraWhitespaces) previousIsSpace = false;
        }
        if (_removeExtraWhitespaces)
            while (output.Count >= space.Length && output.TakeLast(space.Length).SequenceEqual(space)) output.RemoveRange(output.Count - space.Length, space.Length);
        if (_treatWhitespaceAsSuffix && dummyPrefix) output.AddRange(space);
        return Encoding.UTF8.GetString(output.ToArray());
    }

    /// <summary>SentencePiece's NormalizePrefix: the rewrite of the input's start and how many bytes it consumed.</summary>
    ReadOnlySpan<byte> NormalizePrefix(ReadOnlySpan<byte> input, out int consumed)
    {
        foreach (var user in _userDefined)
        {
            if (!input.StartsWith(user)) continue;
            consumed = user.Length;
            return input[..consumed];
        }
        if (_charsmap is not null && _charsmap.LongestMatch(input, out consumed, out var replacement)) return replacement;
        consumed = Math.Min(Utf8Length(input[0]), input.Length);
        return input[..consumed];
    }

    /// <summary>Bytes in the UTF-8 sequence a lead byte starts (the input comes from a .NET string, so it is valid UTF-8).</summary>
    static int Utf8Length(byte lead) => lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}
