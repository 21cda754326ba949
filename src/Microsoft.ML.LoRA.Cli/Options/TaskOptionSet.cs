using System.CommandLine;
using Microsoft.ML.LoRA.MLNet;

namespace Microsoft.ML.LoRA.Cli.Options;

// ML.NET has a namespace Microsoft.ML.Command, which would hide System.CommandLine.Command here.
using Command = System.CommandLine.Command;

/// <summary>
/// train's --task (classification, or regression: the label read as a number, one output, mean squared error) and
/// --standardize-label (regression: train on the standardised label, the head rescaled afterwards).
/// </summary>
internal sealed class TaskOptionSet
{
    public Option<string> Task { get; } = new Option<string>("--task")
    {
        Description = "classification (a class per label value) or regression (the label is a number, predicted by one " +
                      "output trained with mean squared error; metrics RMSE, MAE, R², Pearson and Spearman)",
        HelpName = "classification|regression",
        DefaultValueFactory = _ => "classification",
    }.AcceptOnlyFromAmong("classification", "regression");

    public Option<bool> StandardizeLabel { get; } = new("--standardize-label")
    {
        Description = "Regression: train on the label standardised by the training mean and deviation, the head rescaled " +
                      "afterwards so the model predicts the label in its own units; 'false' trains on the raw label",
        HelpName = "true|false",
        DefaultValueFactory = _ => true,
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Task);
        command.Options.Add(StandardizeLabel);
        command.Validators.Add(result =>
        {
            if (result.GetResult(StandardizeLabel) is { Implicit: false } && result.GetValue(Task) != "regression")
                result.AddError("--standardize-label applies to --task regression only.");
        });
    }

    /// <summary>Whether --task regression was given.</summary>
    public bool IsRegression(ParseResult parseResult) => parseResult.GetValue(Task) == "regression";

    /// <summary>Sets the regression settings on <paramref name="options"/> (nothing for a classifier).</summary>
    public void ApplyTo(ParseResult parseResult, LoraTextClassifierOptions options)
    {
        if (options is LoraTextRegressorOptions regression) regression.StandardizeLabel = parseResult.GetValue(StandardizeLabel);
    }
}
