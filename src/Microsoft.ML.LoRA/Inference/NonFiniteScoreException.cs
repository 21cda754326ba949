namespace Microsoft.ML.LoRA.Inference;

/// <summary>
/// The model produced a NaN or infinite score. Scores are never passed on silently in that state: a damaged weight file,
/// an adapter that diverged, or products that overflowed in low precision would otherwise look like predictions.
/// </summary>
public sealed class NonFiniteScoreException : ArithmeticException
{
    public NonFiniteScoreException(int example, float value)
        : base($"The model produced a non-finite score ({value}) for input {example + 1} of the batch being scored. Its weights " +
               "are damaged or overflowed (a corrupted base checkpoint or adapter, a training run that diverged, or bf16/int8 " +
               "products out of range); no prediction was returned.")
    {
        Example = example;
    }

    /// <summary>The 0-based position of the offending input in the call that scored it.</summary>
    public int Example { get; }
}
