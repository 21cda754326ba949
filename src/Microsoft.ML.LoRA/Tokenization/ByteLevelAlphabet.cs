using System.Text;

namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// GPT-2's <c>bytes_to_unicode</c>, which Hugging Face's ByteLevel pre-tokenizer applies: each UTF-8 byte of the text
/// becomes one printable character (printable bytes themselves, the other 68 U+0100 onwards in byte order; space = Ġ).
/// </summary>
internal static class ByteLevelAlphabet
{
    static readonly char[] Table = Build();

    static char[] Build()
    {
        var table = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            table[b] = printable ? (char)b : (char)next++;
        }
        return table;
    }

    /// <summary>The byte symbols of a text's UTF-8 bytes.</summary>
    public static string Map(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        return string.Create(bytes.Length, bytes, static (chars, b) =>
        {
            for (int i = 0; i < b.Length; i++) chars[i] = Table[b[i]];
        });
    }
}
