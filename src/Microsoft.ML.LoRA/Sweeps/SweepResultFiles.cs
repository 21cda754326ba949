using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>
/// Writes results.csv and results.json (every trial, ranked) after each trial, and best-model.zip and best.json at the
/// end. Every file is written atomically: a reader sees the previous or the new content, never a partial file.
/// </summary>
internal static class SweepResultFiles
{
    static readonly string[] CsvHeader =
    {
        "place", "trial", "rung", "status", "objective", "accuracy", "macro_accuracy", "log_loss", "auc", "f1",
        "rank", "alpha", "dropout", "learning_rate", "epochs", "targets", "epochs_trained", "best_epoch", "seconds", "model", "error",
    };

    public static void WriteResults(SweepFolder folder, IReadOnlyList<TrialResult> ranked, SweepMetric metric, SweepStrategy strategy)
    {
        var csv = new StringBuilder();
        csv.AppendLine(string.Join(",", CsvHeader));
        for (int i = 0; i < ranked.Count; i++)
        {
            var t = ranked[i];
            var c = t.Configuration;
            csv.AppendLine(string.Join(",", new[]
            {
                (i + 1).ToString(CultureInfo.InvariantCulture), t.Id, t.Rung.ToString(CultureInfo.InvariantCulture), t.Status.ToString(),
                Number(t.Objective), Number(t.Metrics?.Accuracy), Number(t.Metrics?.MacroAccuracy), Number(t.Metrics?.LogLoss),
                Number(t.Metrics?.Auc), Number(t.Metrics?.F1),
                c.Rank.ToString(CultureInfo.InvariantCulture), Number(c.Alpha), Number(c.Dropout), Number(c.LearningRate),
                c.Epochs.ToString(CultureInfo.InvariantCulture), c.Targets?.Label ?? "base",
                t.EpochsTrained.ToString(CultureInfo.InvariantCulture), t.BestEpoch.ToString(CultureInfo.InvariantCulture),
                t.Duration.TotalSeconds.ToString("F3", CultureInfo.InvariantCulture),
                t.ModelPath is null ? "" : folder.Relative(t.ModelPath), t.Error ?? "",
            }.Select(Escape)));
        }
        AtomicFile.WriteAllText(folder.ResultsCsv, csv.ToString());

        var json = new
        {
            metric = metric.ToString(),
            lowerIsBetter = metric.LowerIsBetter(),
            strategy = strategy.ToString(),
            trials = ranked.Select((t, i) => TrialRecord.From(t, metric, folder, place: i + 1)).ToList(),
        };
        AtomicFile.WriteAllText(folder.ResultsJson, JsonSerializer.Serialize(json, SweepJson.Indented));
    }

    /// <summary>Copies the best trial's model to best-model.zip and describes it in best.json.</summary>
    public static void WriteBest(SweepFolder folder, TrialResult best, SweepMetric metric)
    {
        var model = best.ModelPath ?? throw new InvalidOperationException($"The best trial {best.Id} has no model.");
        AtomicFile.Write(folder.BestModel, target =>
        {
            using var source = File.OpenRead(model);
            source.CopyTo(target);
        });
        var json = new
        {
            metric = metric.ToString(),
            objective = best.Objective,
            model = folder.Relative(folder.BestModel),
            parameters = best.Configuration.ToParameters(),
            trial = TrialRecord.From(best, metric, folder, place: 1),
        };
        AtomicFile.WriteAllText(folder.BestJson, JsonSerializer.Serialize(json, SweepJson.Indented));
    }

    static string Number(double? value) => value is double v && !double.IsNaN(v) ? TrialConfiguration.Format(v) : "";

    static string Escape(string cell) =>
        cell.IndexOfAny(new[] { ',', '"', '\n', '\r' }) >= 0 ? "\"" + cell.Replace("\"", "\"\"") + "\"" : cell;
}
