namespace Microsoft.ML.LoRA.Cli.Reporting;

/// <summary>
/// One class's figures from a confusion matrix: how many examples are of the class (<see cref="Support"/>), how many
/// were predicted as it, and precision, recall and F1 (0 where undefined, as ML.NET and scikit-learn report them).
/// </summary>
internal sealed record ClassMetrics(string Class, double Support, double Predicted, double Precision, double Recall, double F1);
