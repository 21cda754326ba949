using System.Globalization;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// Hugging Face's <c>BertPreTokenizer</c>: splits on whitespace (dropped) and isolates every punctuation character,
/// where punctuation is ASCII punctuation (including $ + &lt; = &gt; ^ ` | ~) or a Unicode P* character. Everything
/// else, symbols and emoji included, stays inside words.
/// </summary>
/// <remarks>
/// Microsoft.ML.Tokenizers' word-or-punctuation pre-tokenizer (<c>\w+|\p{P}</c>) silently drops characters that are
/// neither (such as $, +, =, £ and emoji) and keeps '_' inside words, so it is not used.
/// </remarks>
internal sealed class BertPreTokenizer : PreTokenizer
{
    public static BertPreTokenizer Instance { get; } = new();

    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) => Split(text.AsSpan());

    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) => Split(text);

    internal static List<(int Offset, int Length)> Split(ReadOnlySpan<char> text)
    {
        var pieces = new List<(int, int)>();
        int wordStart = -1;
        for (int i = 0; i < text.Length;)
        {
            int width;
            bool space, punctuation;
            if (Rune.DecodeFromUtf16(text[i..], out var rune, out width) == System.Buffers.OperationStatus.Done)
            {
                space = Rune.IsWhiteSpace(rune);
                punctuation = !space && IsPunctuation(rune);
            }
            else
            {
                width = 1;
                space = punctuation = false;
            }
            if (space || punctuation)
            {
                if (wordStart >= 0) pieces.Add((wordStart, i - wordStart));
                wordStart = -1;
                if (punctuation) pieces.Add((i, width));
            }
            else if (wordStart < 0)
            {
                wordStart = i;
            }
            i += width;
        }
        if (wordStart >= 0) pieces.Add((wordStart, text.Length - wordStart));
        return pieces;
    }

    /// <summary>Rust's <c>is_ascii_punctuation() || is_punctuation()</c>.</summary>
    internal static bool IsPunctuation(Rune rune)
    {
        int c = rune.Value;
        if (c is (>= 33 and <= 47) or (>= 58 and <= 64) or (>= 91 and <= 96) or (>= 123 and <= 126)) return true;
        return Rune.GetUnicodeCategory(rune) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
    }
}
