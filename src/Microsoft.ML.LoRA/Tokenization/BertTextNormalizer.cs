using System.Globalization;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// Hugging Face's <c>BertNormalizer</c>, step for step: clean text (drop NUL, U+FFFD and every other/control
/// character except tab, newline and carriage return; turn whitespace into a space), put spaces around CJK
/// ideographs, strip accents (NFD, then drop non-spacing marks; the text stays decomposed), lowercase.
/// </summary>
/// <remarks>
/// Microsoft.ML.Tokenizers' own BERT normalizer differs from Hugging Face's in ways that change ids: it deletes
/// tab/newline/carriage return (gluing "a\nb" into one word), keeps format characters such as the soft hyphen, drops
/// spacing marks too, and recomposes the text to NFC (Korean Hangul then maps to [UNK] instead of jamo pieces).
/// </remarks>
internal sealed class BertTextNormalizer : Normalizer
{
    public BertTextNormalizer(bool cleanText, bool handleChineseChars, bool stripAccents, bool lowercase)
    {
        CleanText = cleanText;
        HandleChineseChars = handleChineseChars;
        StripAccents = stripAccents;
        Lowercase = lowercase;
    }

    public bool CleanText { get; }
    public bool HandleChineseChars { get; }
    public bool StripAccents { get; }
    public bool Lowercase { get; }

    public override string Normalize(string original) => Normalize(original.AsSpan());

    public override string Normalize(ReadOnlySpan<char> original)
    {
        var builder = new StringBuilder(original.Length + 8);
        for (int i = 0; i < original.Length;)
        {
            if (Rune.DecodeFromUtf16(original[i..], out var rune, out int width) != System.Buffers.OperationStatus.Done)
            {
                i += 1; // a lone surrogate cannot be in a Rust string; drop it
                continue;
            }
            i += width;
            if (CleanText)
            {
                if (rune.Value is 0 or 0xFFFD || IsControl(rune)) continue;
                if (IsWhitespace(rune)) rune = new Rune(' ');
            }
            if (HandleChineseChars && IsChineseChar(rune.Value))
            {
                builder.Append(' ').Append(rune.ToString()).Append(' ');
                continue;
            }
            AppendRune(builder, rune);
        }
        string text = builder.ToString();
        if (StripAccents) text = RemoveNonSpacingMarks(text.Normalize(NormalizationForm.FormD));
        if (Lowercase) text = ToLower(text);
        return text;
    }

    static void AppendRune(StringBuilder builder, Rune rune)
    {
        if (rune.IsBmp) builder.Append((char)rune.Value);
        else builder.Append(rune.ToString());
    }

    static string RemoveNonSpacingMarks(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (var rune in text.EnumerateRunes())
            if (Rune.GetUnicodeCategory(rune) != UnicodeCategory.NonSpacingMark) AppendRune(builder, rune);
        return builder.ToString();
    }

    /// <summary>Rust's <c>char::to_lowercase</c> per character: the only multi-character mapping is İ -> i̇.</summary>
    static string ToLower(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (var rune in text.EnumerateRunes())
        {
            if (rune.Value == 0x130) builder.Append("i\u0307");
            else AppendRune(builder, Rune.ToLowerInvariant(rune));
        }
        return builder.ToString();
    }

    /// <summary>Tab, newline, carriage return and Unicode White_Space.</summary>
    internal static bool IsWhitespace(Rune rune) => Rune.IsWhiteSpace(rune);

    /// <summary>Hugging Face's is_control: any "other" category (Cc, Cf, Cs, Co, Cn) except tab, newline and carriage return.</summary>
    internal static bool IsControl(Rune rune)
    {
        if (rune.Value is '\t' or '\n' or '\r') return false;
        return Rune.GetUnicodeCategory(rune) is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
            or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned;
    }

    /// <summary>The CJK ideograph blocks Hugging Face pads with spaces.</summary>
    internal static bool IsChineseChar(int c) =>
        c is (>= 0x4E00 and <= 0x9FFF) or (>= 0x3400 and <= 0x4DBF) or (>= 0x20000 and <= 0x2A6DF) or (>= 0x2A700 and <= 0x2B73F)
            or (>= 0x2B740 and <= 0x2B81F) or (>= 0x2B920 and <= 0x2CEAF) or (>= 0xF900 and <= 0xFAFF) or (>= 0x2F800 and <= 0x2FA1F);
}
