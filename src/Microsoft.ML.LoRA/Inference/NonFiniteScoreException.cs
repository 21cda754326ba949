namespace Microsoft.ML.LoRA.Inference;

/// <summary>
/// The model produced a NaN or infinite score. Scores are never passed on silently in that state: a damaged weight file,
/// an adapter that diverged, or products that overflowed in low precision would otherwise look like predictions.
/// </summary>
public sealed class NonFiniteScoreException : ArithmeticException
{
    /// <summary>What makes a model score NaN or infinity, as the messages say it.</summary>
    public const string Causes =
        "its weights are damaged or overflowed (a corrupted base checkpoint or adapter, a training run that diverged, or bf16/int8 products out of range)";

    /// <param name="example">The 0-based position of the first offending input in the call that scored it.</param>
    /// <param name="value">Its first non-finite score.</param>
    public NonFiniteScoreException(int example, float value) : this(example, value, $"input {example + 1} of the call", null) { }

    NonFiniteScoreException(long example, float value, string where, Exception? inner)
        : base($"The model produced a non-finite score ({value}) for {where}, the first such input; {Causes}. No prediction was returned.", inner)
    {
        Example = example;
        Value = value;
    }

    /// <summary>
    /// The 0-based position of the first offending input: in the list given to the call that scored it, or, when raised
    /// while a Transform's output is read, the row of the data that Transform was given.
    /// </summary>
    public long Example { get; }

    /// <summary>The first non-finite score of that input (NaN, or positive or negative infinity).</summary>
    public float Value { get; }

    /// <summary>The same failure, counted in a larger input whose rows from <paramref name="start"/> on were the call's.</summary>
    internal NonFiniteScoreException InRowsFrom(long start) =>
        new(start + Example, Value, $"row {start + Example + 1} of the data being scored", this);

    /// <summary>The same failure, at <paramref name="example"/> of a call that scored its inputs in several parts.</summary>
    internal NonFiniteScoreException At(int example) => new(example, Value);
}
