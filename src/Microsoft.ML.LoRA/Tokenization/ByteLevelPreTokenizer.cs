using System.Globalization;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// The GPT-2 / RoBERTa split of Hugging Face's <c>ByteLevel</c> pre-tokenizer, the regex
/// <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c>, written out by hand so that
/// letters and digits outside the Basic Multilingual Plane count as letters and digits (a .NET regex sees their two
/// UTF-16 halves as surrogates, not letters). The byte-to-symbol mapping is left to the BPE model.
/// </summary>
internal sealed class ByteLevelPreTokenizer : PreTokenizer
{
    public static ByteLevelPreTokenizer Instance { get; } = new();

    enum CharClass { Letter, Number, Space, Other }

    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) => Split(text.AsSpan());

    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) => Split(text);

    internal static List<(int Offset, int Length)> Split(ReadOnlySpan<char> text)
    {
        var pieces = new List<(int, int)>();
        int n = text.Length;
        for (int i = 0; i < n;)
        {
            int contraction = ContractionLength(text, i);
            if (contraction > 0)
            {
                pieces.Add((i, contraction));
                i += contraction;
                continue;
            }
            // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional plain space, then a run of one class.
            if (text[i] == ' ' && i + 1 < n)
            {
                var following = Classify(text, i + 1, out _);
                if (following != CharClass.Space)
                {
                    int end = RunEnd(text, i + 1, following);
                    pieces.Add((i, end - i));
                    i = end;
                    continue;
                }
            }
            var cls = Classify(text, i, out _);
            if (cls != CharClass.Space)
            {
                int end = RunEnd(text, i, cls);
                pieces.Add((i, end - i));
                i = end;
                continue;
            }
            // "\s+(?!\S)" takes a whitespace run but leaves its last character to the word that follows; a lone
            // whitespace character before a word falls to "\s+".
            int runEnd = RunEnd(text, i, CharClass.Space);
            int length = runEnd == n || runEnd - i == 1 ? runEnd - i : runEnd - i - 1;
            pieces.Add((i, length));
            i += length;
        }
        return pieces;
    }

    /// <summary>Length of "'s", "'t", "'re", "'ve", "'m", "'ll" or "'d" at <paramref name="i"/> (case-sensitive), else 0.</summary>
    static int ContractionLength(ReadOnlySpan<char> text, int i)
    {
        if (text[i] != '\'' || i + 1 >= text.Length) return 0;
        char c = text[i + 1];
        if (c is 's' or 't' or 'm' or 'd') return 2;
        if (i + 2 < text.Length)
        {
            var two = text.Slice(i + 1, 2);
            if (two.SequenceEqual("re") || two.SequenceEqual("ve") || two.SequenceEqual("ll")) return 3;
        }
        return 0;
    }

    static int RunEnd(ReadOnlySpan<char> text, int start, CharClass cls)
    {
        int i = start;
        while (i < text.Length && Classify(text, i, out int width) == cls) i += width;
        return i;
    }

    static CharClass Classify(ReadOnlySpan<char> text, int i, out int width)
    {
        if (Rune.DecodeFromUtf16(text[i..], out var rune, out width) != System.Buffers.OperationStatus.Done)
        {
            width = 1;
            return CharClass.Other;
        }
        if (Rune.IsWhiteSpace(rune)) return CharClass.Space;
        return Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => CharClass.Letter,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => CharClass.Number,
            _ => CharClass.Other,
        };
    }
}
