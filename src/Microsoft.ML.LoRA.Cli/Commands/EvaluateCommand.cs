using System.CommandLine;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Cli.Options;
using Microsoft.ML.LoRA.Cli.Running;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Persistence;

namespace Microsoft.ML.LoRA.Cli.Commands;

// ML.NET has a namespace Microsoft.ML.Command, which would hide System.CommandLine.Command here.
using Command = System.CommandLine.Command;

/// <summary>
/// <c>lora evaluate --model RUN_DIR/model.zip --data FILE ...</c>: scores labelled rows with a saved model and prints
/// the metrics, per-class precision/recall/F1 and the confusion matrix (or, with --json, the same object train writes
/// to metrics.json; see <see cref="EvaluationReport"/>). Rows whose label the model was not trained on count as wrong
/// and are listed; rows without a label are skipped and counted; a file without rows to evaluate is an error (exit 4).
/// With --validation FILE or --validation-fraction F it evaluates those rows instead. A regression model (train --task
/// regression) reports RMSE, MAE, R², Pearson and Spearman correlation instead (<see cref="RegressionReport"/>).
/// </summary>
internal sealed class EvaluateCommand : CliCommand
{
    readonly SavedModelOptionSet _model = new();
    readonly DataOptionSet _data = new();
    readonly OutputOptionSet _output = new();

    public override string Name => "evaluate";

    public override string Description =>
        "Evaluate a saved model (model.zip from 'lora train') on a labelled file: metrics, per-class precision/recall/F1 " +
        "and the confusion matrix. --validation-fraction F with the training --seed evaluates the same held-out rows as training did.";

    protected override void Configure(Command command)
    {
        _model.AddTo(command, scores: true);
        _data.AddTo(command);
        _output.AddTo(command, withOutputFolder: false);
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, CliContext context, CancellationToken cancellationToken)
    {
        var ml = new MLContext(seed: parseResult.GetValue(_data.Seed));
        var model = _model.Load(ml, parseResult, out _);
        try
        {
            var loaded = _data.Read(parseResult).Load(ml);
            var rows = loaded.Validation ?? loaded.Train;
            var file = loaded.ValidationFile?.Path ?? loaded.Source.File.Path;
            var source = loaded.Validation is null || loaded.ValidationFile is not null ? file : $"the validation share of {file}";
            Exception? Named(Exception e) =>
                ErrorMapping.NameTextLoaderFailure(e, file)
                ?? ErrorMapping.NameNonFiniteScore(e, parseResult.GetValue(_model.Model)!, source, "Nothing was evaluated.");
            if (PipelineStages.LoraStage(model).Info.Task == ClassifierTask.Regression)
            {
                RegressionReport regression;
                try { (regression, _) = RegressionReport.Evaluate(ml, model, rows, loaded.Validation is null ? "data" : "validation", source); }
                catch (Exception e) when (Named(e) is { } named) { throw named; }
                if (parseResult.GetValue(_output.Json)) JsonOutput.Write(context.Out, regression);
                else RegressionReport.Print(context.Console, regression, $"Metrics on {Path.GetFileName(file)}");
                return Task.FromResult(ExitCodes.Success);
            }
            EvaluationReport report;
            MulticlassClassificationMetrics metrics;
            try { (report, metrics) = EvaluationReport.Evaluate(ml, model, rows, loaded.Validation is null ? "data" : "validation", source); }
            catch (Exception e) when (Named(e) is { } named) { throw named; }
            if (parseResult.GetValue(_output.Json)) JsonOutput.Write(context.Out, report);
            else Results.Print(context.Console, report, metrics, $"Metrics on {Path.GetFileName(file)}");
            return Task.FromResult(ExitCodes.Success);
        }
        finally
        {
            SavedModelOptionSet.Dispose(model);
        }
    }
}
