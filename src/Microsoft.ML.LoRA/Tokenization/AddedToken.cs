namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// A token matched verbatim in the raw text before normalization and pre-tokenization ([CLS], &lt;s&gt;,
/// &lt;|endoftext|&gt;, user-added tokens), as Hugging Face's added vocabulary does. <see cref="LStrip"/> /
/// <see cref="RStrip"/> make a match swallow the whitespace on its left / right (RoBERTa's &lt;mask&gt;).
/// </summary>
internal sealed record AddedToken(string Content, int Id, bool LStrip = false, bool RStrip = false);
