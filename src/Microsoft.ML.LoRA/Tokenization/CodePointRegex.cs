using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// A tokenizer.json Split pattern run as Hugging Face's Oniguruma runs it: over code points. A .NET regex sees a
/// character outside the Basic Multilingual Plane as two surrogates, neither a letter, so "🙂hi" would split after the
/// emoji where Llama-3's <c>[^\r\n\p{L}\p{N}]?\p{L}+</c> takes it as the one optional character before the letters.
/// Each such character is therefore matched as one stand-in character of the same Unicode category, and the matches
/// are mapped back to the original text.
/// </summary>
internal sealed class CodePointRegex
{
    /// <summary>A character of each general category inside the BMP (non-ASCII, so no pattern literal matches it).</summary>
    internal static readonly IReadOnlyDictionary<UnicodeCategory, char> StandIns = new Dictionary<UnicodeCategory, char>
    {
        [UnicodeCategory.UppercaseLetter] = '\u0531',
        [UnicodeCategory.LowercaseLetter] = '\u0561',
        [UnicodeCategory.TitlecaseLetter] = '\u01C5',
        [UnicodeCategory.ModifierLetter] = '\u02B0',
        [UnicodeCategory.OtherLetter] = '\u4E00',
        [UnicodeCategory.NonSpacingMark] = '\u0300',
        [UnicodeCategory.SpacingCombiningMark] = '\u0903',
        [UnicodeCategory.EnclosingMark] = '\u20DD',
        [UnicodeCategory.DecimalDigitNumber] = '\u0660',
        [UnicodeCategory.LetterNumber] = '\u2160',
        [UnicodeCategory.OtherNumber] = '\u00B2',
        [UnicodeCategory.SpaceSeparator] = '\u2000',
        [UnicodeCategory.LineSeparator] = '\u2028',
        [UnicodeCategory.ParagraphSeparator] = '\u2029',
        [UnicodeCategory.Control] = '\u0080',
        [UnicodeCategory.Format] = '\u2061',
        [UnicodeCategory.PrivateUse] = '\uE000',
        [UnicodeCategory.ConnectorPunctuation] = '\u203F',
        [UnicodeCategory.DashPunctuation] = '\u2010',
        [UnicodeCategory.OpenPunctuation] = '\u2045',
        [UnicodeCategory.ClosePunctuation] = '\u2046',
        [UnicodeCategory.InitialQuotePunctuation] = '\u2039',
        [UnicodeCategory.FinalQuotePunctuation] = '\u203A',
        [UnicodeCategory.OtherPunctuation] = '\u2022',
        [UnicodeCategory.MathSymbol] = '\u2200',
        [UnicodeCategory.CurrencySymbol] = '\u20AC',
        [UnicodeCategory.ModifierSymbol] = '\u02C2',
        [UnicodeCategory.OtherSymbol] = '\u2603',
        [UnicodeCategory.OtherNotAssigned] = '\u0378',
    };

    readonly Regex _regex;

    public CodePointRegex(string pattern)
    {
        Pattern = pattern;
        // No timeout: tokenizer patterns are alternations of character classes, linear in the text.
        _regex = new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled);
    }

    public string Pattern { get; }

    /// <summary>The (offset, length) of each match in <paramref name="text"/>, in order.</summary>
    public List<(int Offset, int Length)> Matches(string text)
    {
        var result = new List<(int, int)>();
        if (!text.AsSpan().ContainsAnyInRange('\uD800', '\uDFFF'))
        {
            foreach (var match in _regex.EnumerateMatches(text))
                if (match.Length > 0) result.Add((match.Index, match.Length));
            return result;
        }
        // One stand-in character per code point; starts[i] is where stand-in i's code point starts in the text.
        var standIn = new StringBuilder(text.Length);
        var starts = new List<int>(text.Length + 1);
        for (int i = 0; i < text.Length;)
        {
            starts.Add(i);
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                standIn.Append(StandIns[CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]))]);
                i += 2;
            }
            else
            {
                standIn.Append(text[i]);
                i++;
            }
        }
        starts.Add(text.Length);
        foreach (var match in _regex.EnumerateMatches(standIn.ToString()))
            if (match.Length > 0) result.Add((starts[match.Index], starts[match.Index + match.Length] - starts[match.Index]));
        return result;
    }

    /// <summary>The text cut at the matches' edges, matches and the stretches between them each a piece (behavior "Isolated").</summary>
    public IEnumerable<string> SplitIsolated(string text)
    {
        int position = 0;
        foreach (var (offset, length) in Matches(text))
        {
            if (offset > position) yield return text.Substring(position, offset - position);
            yield return text.Substring(offset, length);
            position = offset + length;
        }
        if (position < text.Length) yield return position == 0 ? text : text.Substring(position);
    }
}
