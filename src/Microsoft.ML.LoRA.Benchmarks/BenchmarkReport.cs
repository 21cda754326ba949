using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>
/// Turns the JSON lines of one run-vs-pytorch.sh session (ours and the anchor's, each tagged with its config) into
/// the comparison table: every ours/anchor ratio raw and divided by the 1024³ matmul ratio, LoRA against full
/// fine-tuning, merged against base inference, and bucketed against pad-to-max throughput.
/// </summary>
public static class BenchmarkReport
{
    /// <summary>One line of the table (and one bar group of the chart).</summary>
    /// <param name="Label">What is compared.</param>
    /// <param name="Raw">The measured ratio.</param>
    /// <param name="Normalised">The ratio divided by the matmul ratio (ours/anchor rows only).</param>
    /// <param name="Target">The issue's target, or null.</param>
    /// <param name="LowerIsBetter">True for time and memory ratios.</param>
    public sealed record Row(string Label, double Raw, double? Normalised, double? Target, bool LowerIsBetter = false)
    {
        /// <summary>True, false, or null when the row has no target. Targets apply to the normalised ratio where there is one.</summary>
        public bool? Met => Target is not double t ? null
            : LowerIsBetter ? (Normalised ?? Raw) <= t
            : Label.Contains("merged/base", StringComparison.Ordinal) ? Math.Abs(Raw - 1) <= 0.03
            : (Normalised ?? Raw) >= t;
    }

    /// <summary>Reads the results file: one JSON object per line; lines that are not JSON objects are skipped.</summary>
    public static List<JsonObject> ReadResults(string path)
    {
        var list = new List<JsonObject>();
        foreach (var line in File.ReadLines(path))
        {
            var t = line.Trim();
            if (!t.StartsWith('{')) continue;
            try { if (JsonNode.Parse(t) is JsonObject o) list.Add(o); }
            catch (System.Text.Json.JsonException) { }
        }
        return list;
    }

    /// <summary>The comparison rows of <paramref name="results"/>, in config order.</summary>
    public static List<Row> Rows(IReadOnlyList<JsonObject> results)
    {
        static string? S(JsonObject o, string k) => o[k] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
        static double D(JsonObject o, string k) => o[k] is JsonValue v && v.TryGetValue<double>(out var d) ? d : double.NaN;
        JsonObject? Find(string anchor, string mode, string? config = null) => Best(results.Where(o =>
            S(o, "anchor") == anchor && S(o, "mode") == mode && (config is null || S(o, "config") == config)).ToList());

        const string Ours = "torchsharp", Torch = "pytorch-eager";
        var oursMatmul = Find(Ours, "matmul");
        var torchMatmul = Find(Torch, "matmul");
        // > 1 when our BLAS multiplies faster; dividing an ours/anchor ratio by it takes the BLAS difference out.
        double? matmul = oursMatmul is null || torchMatmul is null ? null : D(torchMatmul, "matmul_ms") / D(oursMatmul, "matmul_ms");

        var passiveMatmul = Find("pytorch-eager-passive", "matmul");
        double? matmulPassive = oursMatmul is null || passiveMatmul is null ? null : D(passiveMatmul, "matmul_ms") / D(oursMatmul, "matmul_ms");
        var rows = new List<Row>();
        if (matmul is double m) rows.Add(new Row("matmul 1024³ speed", m, null, null));
        var configs = results.Where(o => S(o, "anchor") == Ours && S(o, "config") is not null)
            .Select(o => S(o, "config")!).Distinct().ToList();
        foreach (var c in configs)
        {
            var lora = Find(Ours, "lora", c);
            var full = Find(Ours, "full", c);
            var tLora = Find(Torch, "lora", c);
            var tFull = Find(Torch, "full", c);
            void VsTorch(string label, JsonObject? ours, JsonObject? anchor, string key, double? target, string? anchorKey = null)
            {
                if (ours is null || anchor is null || double.IsNaN(D(ours, key))) return;
                double raw = D(ours, key) / D(anchor, anchorKey ?? key);
                rows.Add(new Row($"{c}: {label}", raw, matmul is double mm ? raw / mm : null, target));
            }
            VsTorch("LoRA train vs PyTorch", lora, tLora, "train_samples_per_s", 1.3);
            VsTorch("inference vs PyTorch", lora, tLora, "infer_samples_per_s", 1.5);
            VsTorch("full FT train vs PyTorch", full, tFull, "train_samples_per_s", null);
            var tPassive = Find("pytorch-eager-passive", "lora", c);
            if (lora is not null && tPassive is not null)
            {
                foreach (var (label, key) in new[] { ("LoRA train vs PyTorch given our runtime settings", "train_samples_per_s"), ("inference vs PyTorch given our runtime settings", "infer_samples_per_s") })
                {
                    double raw = D(lora, key) / D(tPassive, key);
                    rows.Add(new Row($"{c}: {label}", raw, matmulPassive is double mp ? raw / mp : null, null));
                }
            }
            var loraBf16 = Find(Ours, "lora-bf16", c);
            VsTorch("LoRA train, bf16 matmuls, vs PyTorch fp32", loraBf16, tLora, "train_samples_per_s", null);
            VsTorch("inference, bf16 matmuls, vs PyTorch fp32", loraBf16, tLora, "infer_samples_per_s", null);
            VsTorch("inference, int8 scoring (Precision = Int8), vs PyTorch fp32", lora, tLora, "infer_int8_samples_per_s", null, "infer_samples_per_s");
            if (lora is not null && full is not null)
            {
                rows.Add(new Row($"{c}: LoRA/full step time", D(lora, "train_step_ms") / D(full, "train_step_ms"), null, 0.7, LowerIsBetter: true));
                rows.Add(new Row($"{c}: LoRA/full peak RSS", D(lora, "peak_rss_mib") / D(full, "peak_rss_mib"), null, 0.6, LowerIsBetter: true));
                // The floor of that ratio: what the LoRA process held before its first step (runtime, libraries,
                // model) against full fine-tuning's peak. Training can only add to it.
                rows.Add(new Row($"{c}: LoRA RSS before training/full peak RSS", D(lora, "rss_before_train_mib") / D(full, "peak_rss_mib"), null, null, LowerIsBetter: true));
            }
            if (Find(Ours, "step-ratio", c) is { } interleaved)
                // A cross-check without a target: in one process the full steps' allocations share the heap with the
                // LoRA steps', which the target's one-process-per-configuration measurement keeps apart.
                rows.Add(new Row($"{c}: LoRA/full step time, interleaved in one process", D(interleaved, "lora_over_full"), null, null, LowerIsBetter: true));
            if (Find(Ours, "lora-ckpt", c) is { } checkpointed && full is not null)
            {
                rows.Add(new Row($"{c}: LoRA with checkpointing/full step time", D(checkpointed, "train_step_ms") / D(full, "train_step_ms"), null, null, LowerIsBetter: true));
                rows.Add(new Row($"{c}: LoRA with checkpointing/full peak RSS", D(checkpointed, "peak_rss_mib") / D(full, "peak_rss_mib"), null, 0.6, LowerIsBetter: true));
            }
            if (tLora is not null && tFull is not null)
            {
                rows.Add(new Row($"{c}: PyTorch LoRA/full step time", D(tFull, "train_samples_per_s") / D(tLora, "train_samples_per_s"), null, null, LowerIsBetter: true));
                rows.Add(new Row($"{c}: PyTorch LoRA/full peak RSS", D(tLora, "peak_rss_mib") / D(tFull, "peak_rss_mib"), null, null, LowerIsBetter: true));
            }
            if (Find(Ours, "infer-merged", c) is { } merged)
                rows.Add(new Row($"{c}: merged/base inference", D(merged, "merged_over_base"), null, 1.0));
            if (Find(Ours, "padding", c) is { } padding)
            {
                rows.Add(new Row($"{c}: bucketed/padded train", D(padding, "train_speedup"), null, 1.5));
                rows.Add(new Row($"{c}: bucketed/padded inference", D(padding, "infer_speedup"), null, 1.5));
                // What the least-padded grouping saves in work, whatever computes it: no grouping can speed a part
                // of the model up by more than the padded work over its work (tokens, or query-key pairs).
                rows.Add(new Row($"{c}: bucketing ceiling, tokens", D(padding, "token_ceiling"), null, null));
                rows.Add(new Row($"{c}: bucketing ceiling, attention pairs", D(padding, "attention_ceiling"), null, null));
            }
        }
        return rows;
    }

    /// <summary>
    /// The best figures of repeated runs of one configuration (the machine is shared, so each figure takes its best
    /// run: highest throughput, lowest time and memory); ratios inside a run are recomputed from those bests.
    /// </summary>
    public static JsonObject? Best(IReadOnlyList<JsonObject> runs)
    {
        if (runs.Count == 0) return null;
        var best = (JsonObject)runs[^1].DeepClone();
        foreach (var (key, _) in runs[^1])
        {
            var values = runs.Select(r => r[key] is JsonValue v && v.TryGetValue<double>(out var d) ? d : double.NaN)
                .Where(double.IsFinite).ToList();
            if (values.Count == 0) continue;
            if (key.EndsWith("_per_s", StringComparison.Ordinal) || key.EndsWith("gflops", StringComparison.Ordinal)) best[key] = values.Max();
            else if (key.EndsWith("_ms", StringComparison.Ordinal) || key.Contains("rss", StringComparison.Ordinal)) best[key] = values.Min();
        }
        double Get(string k) => best[k] is JsonValue v && v.TryGetValue<double>(out var d) ? d : double.NaN;
        // Ratios of paired timings within each run: the median over the runs rather than the last run's.
        foreach (var paired in new[] { "lora_over_full", "merged_over_base" })
            if (best.ContainsKey(paired))
                best[paired] = StepClock.Median(runs.Select(r => r[paired] is JsonValue v && v.TryGetValue<double>(out var d) ? d : double.NaN)
                    .Where(double.IsFinite).ToList());
        if (best.ContainsKey("train_speedup")) best["train_speedup"] = Get("train_bucketed_samples_per_s") / Get("train_padded_samples_per_s");
        if (best.ContainsKey("infer_speedup")) best["infer_speedup"] = Get("infer_bucketed_samples_per_s") / Get("infer_padded_samples_per_s");
        return best;
    }

    /// <summary>The rows as a Markdown table.</summary>
    public static string Markdown(IEnumerable<Row> rows)
    {
        static string F(double? x) => x is double d ? d.ToString("0.00", CultureInfo.InvariantCulture) : "";
        var sb = new StringBuilder();
        sb.AppendLine("| figure | raw ratio | ÷ matmul ratio | target | met |");
        sb.AppendLine("| --- | ---: | ---: | ---: | :---: |");
        foreach (var r in rows)
        {
            string target = r.Target is null ? "" : r.Label.Contains("merged/base", StringComparison.Ordinal) ? "1 ± 0.03"
                : (r.LowerIsBetter ? "≤ " : "≥ ") + F(r.Target);
            string met = r.Met switch { true => "yes", false => "**no**", null => "" };
            sb.AppendLine($"| {r.Label} | {F(r.Raw)} | {F(r.Normalised)} | {target} | {met} |");
        }
        return sb.ToString();
    }

    /// <summary>The absolute figures of every run, as a Markdown table.</summary>
    public static string RawFigures(IReadOnlyList<JsonObject> results)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| who | config | mode | train samples/s | infer samples/s | step ms | peak RSS MiB | other |");
        sb.AppendLine("| --- | --- | --- | ---: | ---: | ---: | ---: | --- |");
        string G(JsonObject o, string k) => o[k]?.ToJsonString().Trim('"') ?? "";
        foreach (var o in results)
        {
            string mode = G(o, "mode");
            string other = mode switch
            {
                "matmul" => $"{G(o, "matmul_ms")} ms",
                "precision-accuracy" => string.Join("; ", o.Where(kv => kv.Key.EndsWith("_max_abs", StringComparison.Ordinal) && !kv.Key.Contains("_fp32_", StringComparison.Ordinal))
                    .Select(kv => kv.Key[..^"_max_abs".Length])
                    .Select(n => $"{n}: max |Δlogit| {G(o, n + "_max_abs")} ({G(o, n + "_max_rel_to_spread")} of the logit spread), same prediction {G(o, n + "_same_prediction")}")),
                "step-ratio" => $"LoRA {G(o, "lora_step_median_ms")} ms / full {G(o, "full_step_median_ms")} ms (medians), median of pair ratios {G(o, "lora_over_full")}",
                "infer-merged" => $"base {G(o, "infer_base_samples_per_s")}/s, merged {G(o, "infer_merged_samples_per_s")}/s, unmerged {G(o, "infer_unmerged_samples_per_s")}/s",
                "padding" => $"train {G(o, "train_padded_samples_per_s")} → {G(o, "train_bucketed_samples_per_s")}/s, infer {G(o, "infer_padded_samples_per_s")} → {G(o, "infer_bucketed_samples_per_s")}/s, real tokens {G(o, "real_token_share_padded")} → {G(o, "real_token_share_bucketed")}, ceiling {G(o, "token_ceiling")} (tokens) / {G(o, "attention_ceiling")} (attention pairs)",
                _ => o.ContainsKey("optimizer_ms") ? $"fwd {G(o, "forward_ms")} / bwd {G(o, "backward_ms")} / AdamW {G(o, "optimizer_ms")} ms; unmerged infer {G(o, "infer_unmerged_samples_per_s")}/s{(o["infer_int8_samples_per_s"] is JsonValue ? $", int8 {G(o, "infer_int8_samples_per_s")}/s" : "")}" : "",
            };
            string step = o.ContainsKey("train_step_ms") ? G(o, "train_step_ms")
                : o.ContainsKey("train_samples_per_s") && o.ContainsKey("batch") && double.TryParse(G(o, "train_samples_per_s"), CultureInfo.InvariantCulture, out var tps)
                    ? (1000 * double.Parse(G(o, "batch"), CultureInfo.InvariantCulture) / tps).ToString("0.##", CultureInfo.InvariantCulture) : "";
            sb.AppendLine($"| {(G(o, "anchor") == "torchsharp" ? "ours" : "PyTorch " + G(o, "torch") + (G(o, "anchor").EndsWith("passive", StringComparison.Ordinal) ? " (our runtime settings)" : ""))} | {G(o, "config")} | {mode} | {G(o, "train_samples_per_s")} | {G(o, "infer_samples_per_s")} | {step} | {G(o, "peak_rss_mib")} | {other} |");
        }
        return sb.ToString();
    }
}
