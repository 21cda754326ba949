using System.Text;

namespace Microsoft.ML.LoRA.Tokenization;

internal static class Utf8Text
{
    /// <summary>
    /// Lone UTF-16 surrogates (which no UTF-8 text can hold, and which the tokenizers being matched never see) become
    /// U+FFFD, as a UTF-8 decoder would make them.
    /// </summary>
    public static string RepairSurrogates(string text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            if (!char.IsSurrogate(text[i])) continue;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { i++; continue; }
            return Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(text));
        }
        return text;
    }
}
