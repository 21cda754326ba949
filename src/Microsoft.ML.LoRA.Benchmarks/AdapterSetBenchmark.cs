using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Inference;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using TorchSharp;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>
/// What many adapters on one base cost (<see cref="LoraAdapterSet"/>): a base model built from --config with random
/// weights and <see cref="AdapterCount"/> different random PEFT adapters (query and value at --rank, plus the
/// classification head, as a fit saves them) are written to a temporary folder; then three child processes, so that
/// each peak RSS belongs to one arrangement, load the base alone, the base with every adapter in one set, and every
/// adapter on a base of its own, and score one batch of --batch texts of about --seq tokens. The set's child also times
/// switching the active adapter and scoring a batch whose rows name different adapters.
/// </summary>
public static class AdapterSetBenchmark
{
    /// <summary>Adapters written and loaded.</summary>
    public const int AdapterCount = 10;

    static readonly string[] Sides = { "base", "set", "separate" };

    /// <summary>Writes the models, runs each arrangement in a child process, prints their JSON lines, a summary line and a table.</summary>
    public static int RunAll(BenchmarkOptions o, string[] args)
    {
        if (o.Vocab is null)
        {
            Console.Error.WriteLine("--mode adapter-set needs --vocab <vocab.txt> (its folder's tokenizer files go with the base model)");
            return 2;
        }
        var root = Path.Combine(Path.GetTempPath(), "lora-adapter-set-benchmark-" + Environment.ProcessId);
        try
        {
            lock (TorchRandomLock.Sync) Prepare(o, root);
            var results = new Dictionary<string, BenchmarkResult>();
            foreach (var side in Sides)
            {
                var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
                if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet") start.ArgumentList.Add(typeof(AdapterSetBenchmark).Assembly.Location);
                foreach (var a in args) start.ArgumentList.Add(a);
                foreach (var a in new[] { "--side", side, "--input", root, "--json" }) start.ArgumentList.Add(a);
                using var child = Process.Start(start)!;
                var line = child.StandardOutput.ReadToEnd().Trim().Split('\n').LastOrDefault(l => l.StartsWith('{'));
                child.WaitForExit();
                if (child.ExitCode != 0 || line is null)
                {
                    Console.Error.WriteLine($"the {side} child process exited with {child.ExitCode}; see its stderr above");
                    return 1;
                }
                Console.WriteLine(line);
                results[side] = BenchmarkResult.FromJson(line);
            }
            var summary = Summary(o, results);
            Console.WriteLine(summary.ToJson());
            Console.WriteLine();
            Console.WriteLine(Table(results, summary));
            return 0;
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>
    /// Writes the base model (config, weights, tokenizer files) to <paramref name="root"/>/base and the adapters to
    /// <paramref name="root"/>/adapter-0 ... (PEFT folders), each with its own random factors and head.
    /// </summary>
    public static void Prepare(BenchmarkOptions o, string root)
    {
        var config = TransformerConfig.Load(o.Config!);
        var baseFolder = Path.Combine(root, "base");
        Directory.CreateDirectory(baseFolder);
        File.Copy(o.Config!, Path.Combine(baseFolder, "config.json"), overwrite: true);
        foreach (var file in Directory.GetFiles(Path.GetDirectoryName(Path.GetFullPath(o.Vocab!))!))
            if (Tokenization.TextEncoders.TokenizerFileNames.Contains(Path.GetFileName(file)))
                File.Copy(file, Path.Combine(baseFolder, Path.GetFileName(file)), overwrite: true);
        using var model = BenchmarkModels.Create(config, o.Seed);
        SafeTensorsWriter.Save(Path.Combine(baseFolder, "model.safetensors"),
            model.named_parameters().ToDictionary(p => p.name, p => (torch.Tensor)p.parameter));
        var options = new LoraOptions { LoraQuery = true, LoraValue = true, Rank = o.Rank, Alpha = o.Alpha, Dropout = 0 };
        LoraInjector.Apply(model, options);
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        for (int i = 0; i < AdapterCount; i++)
        {
            torch.manual_seed(o.Seed + 1 + i);
            using (torch.no_grad())
                foreach (var (_, parameter) in trainable) parameter.normal_(0, 0.02);   // A, B and this adapter's own head
            PeftAdapter.Save(model, AdapterFolder(root, i), options);
        }
    }

    static string AdapterFolder(string root, int i) => Path.Combine(root, $"adapter-{i}");

    /// <summary>One arrangement in this process: "base", "set" or "separate", over the folders in --input.</summary>
    public static BenchmarkResult RunSide(BenchmarkOptions o)
    {
        if (o.Input is null || o.Side is null) throw new ArgumentException("an adapter-set side needs --side base|set|separate and --input <folder written by the parent>");
        using (torch.zeros(1)) { }   // libtorch loaded and initialised before the starting figure
        double startRss = PeakMemory.CurrentRssMiB();
        var baseFolder = Path.Combine(o.Input, "base");
        var result = new BenchmarkResult()
            .Set("anchor", "torchsharp").Set("mode", "adapter-set").Set("side", o.Side).Set("threads", torch.get_num_threads())
            .Set("config", Path.GetFileNameWithoutExtension(o.Config)).Set("adapters", o.Side == "base" ? 0 : AdapterCount)
            .Set("rank", o.Rank).Set("batch", o.Batch).Set("rss_start_mib", startRss);
        var texts = Texts(baseFolder, o.Batch, o.Seq, o.Seed);
        var names = Enumerable.Range(0, AdapterCount).Select(i => $"adapter-{i}").ToArray();

        if (o.Side == "separate")
        {
            var models = new List<SequenceClassifier>();
            try
            {
                var folder = CheckpointFolder.Open(baseFolder);
                var encoder = Tokenization.TextEncoders.FromFolder(baseFolder, folder.Config, Math.Min(256, Tokenization.TextEncoders.ModelMaxLength(folder.Config)));
                for (int i = 0; i < AdapterCount; i++)
                {
                    var model = PretrainedModel.Load(folder);
                    models.Add(model);
                    PeftAdapter.Load(model, AdapterFolder(o.Input, i));
                }
                result.Set("rss_loaded_mib", PeakMemory.CurrentRssMiB()).Set("peak_loading_mib", PeakMemory.PeakRssMiB());
                var clock = new StepClock();
                foreach (var model in models) clock.Time(() => new ClassifierScorer(model, encoder, o.Batch).Logits(texts));
                result.Set("batch_ms", clock.MedianMs);
            }
            finally
            {
                foreach (var model in models) model.Dispose();
            }
            return result.Set("peak_rss_mib", PeakMemory.PeakRssMiB());
        }

        using var set = LoraAdapterSet.Open(baseFolder, batchSize: o.Batch);
        if (o.Side == "base")
        {
            result.Set("rss_loaded_mib", PeakMemory.CurrentRssMiB()).Set("peak_loading_mib", PeakMemory.PeakRssMiB());
            var clock = new StepClock();
            for (int i = 0; i < Math.Max(o.Steps, 3); i++) clock.Time(() => set.Logits(LoraAdapterSet.BaseModelName, texts));
            return result.Set("batch_ms", clock.MedianMs).Set("peak_rss_mib", PeakMemory.PeakRssMiB());
        }

        for (int i = 0; i < names.Length; i++) set.Add(names[i], AdapterFolder(o.Input, i));
        result.Set("rss_loaded_mib", PeakMemory.CurrentRssMiB()).Set("peak_loading_mib", PeakMemory.PeakRssMiB());
        result.Set("adapter_bytes", names.Average(set.AdapterBytes));

        // One adapter per batch first, as the other arrangements score, so that this peak compares with theirs; then
        // batches whose rows name every adapter, then switching alone.
        var single = new StepClock();
        for (int i = 0; i < Math.Max(o.Steps, 3); i++) single.Time(() => set.Logits(names[i % names.Length], texts));
        result.Set("batch_ms", single.MedianMs).Set("peak_rss_mib", PeakMemory.PeakRssMiB());
        var perRow = Enumerable.Range(0, texts.Length).Select(i => names[i % names.Length]).ToArray();
        var mixed = new StepClock();
        for (int i = 0; i < Math.Max(o.Steps, 3); i++) mixed.Time(() => set.LogitsPerRow(perRow, texts));
        var switching = new StepClock();
        for (int i = 0; i < 20 * AdapterCount; i++) switching.Time(() => set.Use(names[i % names.Length]));
        return result
            .Set("mixed_batch_ms", mixed.MedianMs)
            .Set("switch_ms", switching.MedianMs)
            .Set("peak_rss_after_mixed_mib", PeakMemory.PeakRssMiB());
    }

    /// <summary>The three arrangements side by side, with the separate models' figure also estimated from the base's.</summary>
    static BenchmarkResult Summary(BenchmarkOptions o, IReadOnlyDictionary<string, BenchmarkResult> r)
    {
        double runtime = r["base"].Number("rss_start_mib");
        double baseModel = r["base"].Number("rss_loaded_mib") - runtime;
        return new BenchmarkResult()
            .Set("mode", "adapter-set").Set("config", Path.GetFileNameWithoutExtension(o.Config)).Set("adapters", AdapterCount).Set("rank", o.Rank)
            .Set("base_peak_loading_mib", r["base"].Number("peak_loading_mib"))
            .Set("set_peak_loading_mib", r["set"].Number("peak_loading_mib"))
            .Set("separate_peak_loading_mib", r["separate"].Number("peak_loading_mib"))
            .Set("base_peak_rss_mib", r["base"].Number("peak_rss_mib"))
            .Set("set_peak_rss_mib", r["set"].Number("peak_rss_mib"))
            .Set("separate_peak_rss_mib", r["separate"].Number("peak_rss_mib"))
            .Set("base_model_mib", baseModel)
            .Set("set_adapters_mib", r["set"].Number("rss_loaded_mib") - r["base"].Number("rss_loaded_mib"))
            .Set("separate_estimate_mib", runtime + AdapterCount * baseModel)
            .Set("adapter_mib", r["set"].Number("adapter_bytes") / 1048576.0)
            .Set("switch_ms", r["set"].Number("switch_ms"))
            .Set("one_adapter_batch_ms", r["set"].Number("batch_ms"))
            .Set("mixed_batch_ms", r["set"].Number("mixed_batch_ms"));
    }

    static string Table(IReadOnlyDictionary<string, BenchmarkResult> r, BenchmarkResult s)
    {
        string F(double v) => v.ToString("F0", CultureInfo.InvariantCulture);
        return string.Join('\n',
            "| arrangement | resident after loading MiB | peak RSS while loading MiB | peak RSS with scoring MiB | batch ms |",
            "|---|---|---|---|---|",
            $"| base model alone | {F(r["base"].Number("rss_loaded_mib"))} | {F(r["base"].Number("peak_loading_mib"))} | {F(r["base"].Number("peak_rss_mib"))} | {F(r["base"].Number("batch_ms"))} |",
            $"| base + {AdapterCount} adapters in one LoraAdapterSet | {F(r["set"].Number("rss_loaded_mib"))} | {F(r["set"].Number("peak_loading_mib"))} | {F(r["set"].Number("peak_rss_mib"))} | {F(r["set"].Number("batch_ms"))} (one adapter), {F(r["set"].Number("mixed_batch_ms"))} (rows across all {AdapterCount}) |",
            $"| {AdapterCount} models, one adapter each | {F(r["separate"].Number("rss_loaded_mib"))} | {F(r["separate"].Number("peak_loading_mib"))} | {F(r["separate"].Number("peak_rss_mib"))} | {F(r["separate"].Number("batch_ms"))} (each model) |",
            "",
            $"Each adapter: {s.Number("adapter_mib").ToString("F2", CultureInfo.InvariantCulture)} MiB; switching the active adapter: " +
            $"{s.Number("switch_ms").ToString("F3", CultureInfo.InvariantCulture)} ms (median).");
    }

    /// <summary>--batch texts of about <paramref name="tokens"/> tokens: words drawn from the base model's vocabulary with a seeded generator.</summary>
    static string[] Texts(string baseFolder, int batch, int tokens, int seed)
    {
        var words = File.ReadLines(Path.Combine(baseFolder, "vocab.txt"))
            .Where(w => w.Length > 2 && w.All(char.IsLetter)).ToArray();
        if (words.Length == 0) throw new ArgumentException("the vocabulary has no plain words to make texts from");
        var random = new Random(seed);
        return Enumerable.Range(0, batch)
            .Select(_ => string.Join(' ', Enumerable.Range(0, Math.Max(1, tokens - 2)).Select(_ => words[random.Next(words.Length)]))).ToArray();
    }
}
