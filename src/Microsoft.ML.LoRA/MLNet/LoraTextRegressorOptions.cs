namespace Microsoft.ML.LoRA.MLNet;

/// <summary>
/// Options of <see cref="LoraTextRegressionEstimator"/> (<c>mlContext.Regression.Trainers.LoraTextRegressor</c>): the
/// classifier's options, read for a model with one output that predicts a number. <see cref="LoraTextClassifierOptions.LabelColumnName"/>
/// names a Single (float) column; the fitted model appends <see cref="LoraTextClassifierOptions.ScoreColumnName"/>
/// (default "Score"), the predicted value. <see cref="LoraTextClassifierOptions.PredictedLabelColumnName"/> and
/// <see cref="LoraTextClassifierOptions.ProbabilityColumnName"/> are not used, and <see cref="LoraTextClassifierOptions.ValidationFraction"/>
/// holds out a seeded random share (there are no classes to stratify by).
/// </summary>
public sealed class LoraTextRegressorOptions : LoraTextClassifierOptions
{
    /// <summary>
    /// Train on the label standardised to mean 0 and standard deviation 1 (the training rows' mean and deviation),
    /// then rescale the head's output layer so the fitted model predicts the label in its own units. Default true:
    /// a freshly initialised head starts near 0, which is the mean of a standardised label but may be far from the
    /// label itself (IMDb ratings average 5.5); measured in docs/regression.md.
    /// </summary>
    public bool StandardizeLabel { get; set; } = true;
}
