using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>
/// The fine-tuning quality table of docs/quality.md, from the run folders quality.sh writes:
/// <c>runs/&lt;data set&gt;/&lt;method&gt;/s&lt;seed&gt;/</c>, each a <c>lora train</c> run folder (options.json,
/// history.json, metrics.json). Per data set and method: the last epoch's accuracy on the evaluation set (as a plain
/// training loop reports it, whichever epoch the run kept) as mean ± sample standard deviation over the seeds, the
/// trainable parameters, and the mean training time and peak resident memory of a run.
/// </summary>
public static class QualityReport
{
    /// <summary>The methods in table order: folder name and the label the table gives it.</summary>
    public static readonly IReadOnlyList<(string Folder, string Label)> Methods = new[]
    {
        ("head", "head only"),
        ("last-layers-2", "last 2 layers"),
        ("lora", "LoRA q,v r=8 (PEFT's usual)"),
        ("lora-tuned", "LoRA, best of a sweep"),
        ("full", "full fine-tuning"),
    };

    /// <summary>The readable name of a data set folder (sst2, imdb), or the folder name itself.</summary>
    public static string DataSetLabel(string folder) => folder switch
    {
        "sst2" => "SST-2 (20,000 training rows, dev set)",
        "imdb" => "IMDb (5,000 training reviews, 5,000 test reviews)",
        _ => folder,
    };

    /// <summary>One row of the table: a method on one data set.</summary>
    public sealed record Row(
        string DataSet, string Method, string Label, IReadOnlyList<double> Accuracies, long TrainableParameters,
        long TotalParameters, double TrainingSeconds, double PeakRssMiB, string Settings)
    {
        public double Mean => Accuracies.Average();
        /// <summary>Sample standard deviation (0 for a single seed).</summary>
        public double StandardDeviation => Accuracies.Count < 2 ? 0
            : Math.Sqrt(Accuracies.Sum(a => (a - Mean) * (a - Mean)) / (Accuracies.Count - 1));
    }

    /// <summary>Every (data set, method) that has at least one finished run under <paramref name="runs"/>.</summary>
    public static List<Row> Read(string runs)
    {
        var rows = new List<Row>();
        string[] known = { "sst2", "imdb" };
        foreach (var dataSet in Directory.GetDirectories(runs).OrderBy(d => Array.IndexOf(known, Path.GetFileName(d)) is var i && i >= 0 ? i : known.Length)
                     .ThenBy(d => d, StringComparer.Ordinal))
            foreach (var (folder, label) in Methods)
            {
                var seeds = Directory.Exists(Path.Combine(dataSet, folder))
                    ? Directory.GetDirectories(Path.Combine(dataSet, folder), "s*").Where(s => File.Exists(Path.Combine(s, "metrics.json")))
                        .OrderBy(s => s, StringComparer.Ordinal).ToList()
                    : new List<string>();
                if (seeds.Count == 0) continue;
                var runsOf = seeds.Select(Run.Read).ToList();
                rows.Add(new Row(Path.GetFileName(dataSet), folder, label, runsOf.Select(r => r.LastAccuracy).ToList(),
                    runsOf[0].Trainable, runsOf[0].Total, runsOf.Average(r => r.Seconds), runsOf.Average(r => r.PeakRss), runsOf[0].Settings));
            }
        return rows;
    }

    /// <summary>The Markdown tables, one per data set.</summary>
    public static string Markdown(IReadOnlyList<Row> rows)
    {
        var sb = new StringBuilder();
        foreach (var group in rows.GroupBy(r => r.DataSet))
        {
            sb.AppendLine($"### {DataSetLabel(group.Key)}");
            sb.AppendLine();
            sb.AppendLine("| method | accuracy, mean ± sd | seeds | trainable parameters | training time (s) | peak RSS (MiB) | settings |");
            sb.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
            foreach (var r in group)
                sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {r.Label} | {r.Mean * 100:F1}% ± {r.StandardDeviation * 100:F1} | {r.Accuracies.Count} | {r.TrainableParameters:N0} ({100.0 * r.TrainableParameters / r.TotalParameters:F2}%) | {r.TrainingSeconds:F0} | {r.PeakRssMiB:F0} | {r.Settings} |"));
            sb.AppendLine();
            sb.AppendLine("Per seed: " + string.Join("; ", group.Select(r =>
                $"{r.Label} {string.Join(", ", r.Accuracies.Select(a => (a * 100).ToString("F2", CultureInfo.InvariantCulture)))}")));
            sb.AppendLine();
        }
        return sb.ToString();
    }

    /// <summary>What one run folder holds that the table needs.</summary>
    sealed record Run(double LastAccuracy, long Trainable, long Total, double Seconds, double PeakRss, string Settings)
    {
        public static Run Read(string folder)
        {
            JsonNode Load(string file) => JsonNode.Parse(File.ReadAllText(Path.Combine(folder, file)))
                ?? throw new InvalidDataException($"{folder}/{file} is empty");
            var history = Load("history.json");
            var training = Load("metrics.json")["training"] ?? throw new InvalidDataException($"{folder}/metrics.json has no training figures");
            var options = Load("options.json");
            var last = history["epochs"]!.AsArray().Last()!;
            double accuracy = last["validationAccuracy"]?.GetValue<double>()
                ?? throw new InvalidDataException($"{folder}: the run had no validation data");
            var lora = options["lora"]!;
            string method = options["method"]!.GetValue<string>();
            string adapter = method == "lora"
                ? $"r={lora["rank"]}, alpha={lora["alpha"]}, dropout={lora["dropout"]}, targets {Targets(lora)}, "
                : "";
            string settings = string.Create(CultureInfo.InvariantCulture,
                $"{adapter}lr {options["learningRate"]!.GetValue<double>():0.#####}, {options["epochs"]} epochs, batch {options["batchSize"]}");
            return new Run(accuracy, training["trainableParameters"]!.GetValue<long>(), training["totalParameters"]!.GetValue<long>(),
                training["trainingSeconds"]!.GetValue<double>(), training["peakRssMiB"]!.GetValue<double>(), settings);
        }

        static string Targets(JsonNode lora)
        {
            if (lora["targetModules"] is JsonArray modules) return string.Join("+", modules.Select(m => m!.GetValue<string>()));
            var on = new[] { ("loraQuery", "q"), ("loraKey", "k"), ("loraValue", "v"), ("loraProjection", "o"), ("loraMlp", "mlp"), ("loraHead", "head") }
                .Where(s => lora[s.Item1]?.GetValue<bool>() == true).Select(s => s.Item2).ToList();
            return on.Count == 0 ? "q+v" : string.Join("+", on);
        }
    }
}
