using System.Globalization;
using Microsoft.ML.LoRA.Tokenization;

namespace Microsoft.ML.LoRA.Tests.Support;

/// <summary>
/// A "tokenizer" whose texts are token ids written out ("79 46 43"), for the reference fixtures in ../shared/fixtures,
/// which come with ids (cases.json) rather than a vocabulary. Pads with id 0, as their configs do.
/// </summary>
public sealed class TokenIdsEncoder : ITextEncoder
{
    public int MaxLength => 64;

    public int PadTokenId => 0;

    public EncodedText Encode(string? text, string? pair = null)
    {
        var ids = (text ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(t => int.Parse(t, CultureInfo.InvariantCulture)).ToArray();
        return new EncodedText(ids, new int[ids.Length]);
    }

    /// <summary>The rows of a cases file as texts of this encoder: each row's ids where its attention mask is 1.</summary>
    public static string[] Texts(Microsoft.ML.LoRA.Diagnostics.LogitsCases cases) =>
        cases.InputIds.Select((ids, r) => string.Join(' ', ids.Where((_, i) => cases.AttentionMask[r][i] == 1))).ToArray();
}
