namespace Microsoft.ML.LoRA.Adaptation;

/// <summary>What a language model learns to predict during domain adaptation.</summary>
public enum LanguageModelObjective
{
    /// <summary>
    /// Masked-language modelling (BERT, DistilBERT, RoBERTa): some tokens are hidden and predicted from both sides,
    /// with Hugging Face's masking rule (see <see cref="MaskedTokenSelection"/>).
    /// </summary>
    MaskedLanguageModel,

    /// <summary>Causal (next-token) language modelling (GPT-2): every token is predicted from the tokens before it.</summary>
    CausalLanguageModel,
}
