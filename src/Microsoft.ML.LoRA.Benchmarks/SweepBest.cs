using System.Globalization;
using System.Text.Json;
using Microsoft.ML.LoRA.Sweeps;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>
/// The best configuration of a finished <c>lora sweep</c> (its best.json) as <c>lora train</c> arguments, so a script can
/// train the winner again with other seeds: <c>--rank 16 --alpha 32 --dropout 0.05 --learning-rate 0.002 --epochs 2
/// --lora-query --lora-value</c>.
/// </summary>
public static class SweepBest
{
    /// <summary>The train arguments of the best trial in <paramref name="sweepFolder"/>.</summary>
    public static IReadOnlyList<string> TrainArguments(string sweepFolder)
    {
        var path = Path.Combine(sweepFolder, "best.json");
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} not found: has the sweep finished?", path);
        using var best = JsonDocument.Parse(File.ReadAllText(path));
        var p = best.RootElement.GetProperty("parameters").Deserialize<LoraSweepParameters>(new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase })
            ?? throw new InvalidDataException($"{path} has no parameters");
        string N(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        var args = new List<string>();
        if (p.Rank is int r) args.AddRange(new[] { "--rank", r.ToString(CultureInfo.InvariantCulture) });
        if (p.Alpha is double a) args.AddRange(new[] { "--alpha", N(a) });
        if (p.Dropout is double d) args.AddRange(new[] { "--dropout", N(d) });
        if (p.LearningRate is double lr) args.AddRange(new[] { "--learning-rate", N(lr) });
        if (p.Epochs is int e) args.AddRange(new[] { "--epochs", e.ToString(CultureInfo.InvariantCulture) });
        if (p.SetsTargets)
        {
            var on = new[] { (p.LoraQuery, "query"), (p.LoraKey, "key"), (p.LoraValue, "value"), (p.LoraProjection, "projection"), (p.LoraMlp, "mlp"), (p.LoraHead, "head") }
                .Where(s => s.Item1 == true).Select(s => "--lora-" + s.Item2).ToList();
            args.AddRange(on.Count > 0 ? on : new List<string> { "--targets", "none" });
        }
        return args;
    }
}
