using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Training;

namespace Microsoft.ML.LoRA.Cli.Running;

/// <summary>The end of <c>lora train --task regression</c>: evaluate, write metrics.json and log.txt, print.</summary>
internal static class RegressionRun
{
    /// <summary>
    /// Evaluates the fitted regressor on <paramref name="data"/>, writes the run's last files into its staging folder,
    /// commits the run and prints the metrics; returns the exit code.
    /// </summary>
    public static int Finish(CliContext context, bool json, MLContext ml, ITransformer model, RunFolder run, RunLog log, TrainingHistory history,
        IDataView data, string evaluatedOn, double trainingMean, TrainingFigures figures)
    {
        var (evaluation, _) = RegressionReport.Evaluate(ml, model, data, evaluatedOn, trainingMean: trainingMean);
        var report = evaluation with { Training = figures };
        run.WriteJson(run.Staged("metrics.json"), report);
        log.Write($"Trained {figures.TrainableParameters:N0} of {figures.TotalParameters:N0} parameters in {figures.TrainingSeconds:F1} s; peak memory {figures.PeakRssMiB:F0} MiB.");
        log.Write(string.Create(CultureInfo.InvariantCulture,
            $"Saved {run.ModelFile}; {evaluatedOn} RMSE {report.Rmse:F4} (predicting the training mean: {report.TrainingMeanRmse:F4}), MAE {report.Mae:F4}, R² {report.RSquared:F4}, Pearson {report.Pearson:F4}, Spearman {report.Spearman:F4}."));
        if (history.Cancelled) log.Write("Training was cancelled; the model holds the best (or last) weights reached.");
        AtomicFile.WriteAllText(run.Staged("log.txt"), string.Join(Environment.NewLine, log.Lines) + Environment.NewLine);
        run.Commit(CrashPoint.Hit);
        if (json) JsonOutput.Write(context.Out, new { runFolder = run.Path, model = run.ModelFile, metrics = report, history });
        else RegressionReport.Print(context.Console, report, $"Metrics on the {evaluatedOn} data");
        return history.Cancelled ? ExitCodes.Cancelled : ExitCodes.Success;
    }
}
