namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// One example after tokenization: ids with the family's special tokens, truncated to the encoder's maximum length,
/// not padded. <see cref="TokenTypeIds"/> marks the segment (0 = first text, 1 = second) and has the same length.
/// </summary>
public sealed record EncodedText(int[] InputIds, int[] TokenTypeIds)
{
    public int Length => InputIds.Length;
}

/// <summary>Turns text (or a text pair) into model input ids the way the model's Hugging Face tokenizer does.</summary>
public interface ITextEncoder
{
    /// <summary>Most tokens per example, special tokens included.</summary>
    int MaxLength { get; }

    /// <summary>
    /// The id used to pad batches (the attention mask hides it). A checkpoint whose tokenizer and config name no pad
    /// token pads with its end-of-sequence token (see <see cref="FromFilesTextEncoder.PadTokenIsEndOfSequence"/>).
    /// </summary>
    int PadTokenId { get; }

    /// <summary>
    /// Tokenizes <paramref name="text"/> (and the optional second text of a pair), adds special tokens and truncates
    /// to <see cref="MaxLength"/> (longest text first for pairs). Null or empty text yields the special tokens alone
    /// (at least one token, so every example has something to attend to).
    /// </summary>
    EncodedText Encode(string? text, string? pair = null);

    /// <summary>
    /// The ids of the tokenizer's special tokens (Hugging Face's <c>all_special_ids</c>: [CLS] [SEP] [PAD] [MASK]
    /// [UNK], &lt;s&gt; &lt;/s&gt; &lt;pad&gt; &lt;mask&gt; &lt;unk&gt;, &lt;|endoftext|&gt;), which masked-language-model training never masks.
    /// </summary>
    IReadOnlyCollection<int> SpecialTokenIds => new[] { PadTokenId };

    /// <summary>The id of the mask token ([MASK], &lt;mask&gt;), or null when the tokenizer has none (GPT-2).</summary>
    int? MaskTokenId => null;
}
