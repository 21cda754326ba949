namespace Microsoft.ML.LoRA.Checkpoints;

/// <summary>The tokenizer conventions a family's checkpoint may use (see <c>Tokenization.TextEncoders</c>).</summary>
public enum TokenizerKind
{
    /// <summary>BERT's WordPiece ([CLS] text [SEP]; tokenizer.json or vocab.txt).</summary>
    WordPiece,
    /// <summary>RoBERTa's byte-level BPE (&lt;s&gt; text &lt;/s&gt;, &lt;pad&gt; and &lt;mask&gt;; tokenizer.json or vocab.json + merges.txt).</summary>
    RobertaByteLevelBpe,
    /// <summary>GPT-2's byte-level BPE (no special tokens around the text, pads with end-of-text; tokenizer.json or vocab.json + merges.txt).</summary>
    Gpt2ByteLevelBpe,
    /// <summary>
    /// Whatever the checkpoint's own files hold, with its own special tokens: tokenizer.json where present (its model
    /// type decides), else a SentencePiece model (tokenizer.model, spm.model). Families whose checkpoints come with
    /// either (DeBERTa-v3, the LLaMA family) use it.
    /// </summary>
    FromFiles,
}
