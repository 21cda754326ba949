using System.Diagnostics;
using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Persistence;
using Microsoft.ML.Tokenizers;
using Microsoft.ML.TorchSharp;
using Microsoft.ML.TorchSharp.NasBert;
using TorchSharp;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>
/// The same SST-2 sentences through ML.NET's own transformer text classifier (<c>TextClassification</c>, package
/// Microsoft.ML.TorchSharp: a 24-layer NAS-BERT, every weight trained) and through <c>LoraTextClassifier</c>, each in
/// its own child process so that peak memory belongs to one trainer: one epoch of training, then scoring the same
/// sentences. ML.NET's trainer downloads its pre-trained encoder from aka.ms at first use; this machine cannot reach
/// it, so the benchmark writes an encoder of the same architecture with random weights where the trainer looks
/// (<c>MLContext.TempFilePath</c>/mlnet/NasBert2000000.tsm), built with the trainer's own model class. Random weights
/// cost the same time as trained ones.
/// </summary>
public static class MlnetAnchorBenchmark
{
    const string NasBertFile = "NasBert2000000.tsm";

    sealed class Sentence
    {
        [LoadColumn(0)] public string Label { get; set; } = "";
        [LoadColumn(1)] public string Text { get; set; } = "";
    }

    /// <summary>Runs every side in a child process and prints a Markdown table of their JSON lines.</summary>
    public static int RunAll(BenchmarkOptions o, string[] args)
    {
        var sides = new[] { "mlnet", "lora", "full" };
        var results = new List<BenchmarkResult>();
        bool childFailed = false;
        foreach (var side in sides)
        {
            var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
            if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet") start.ArgumentList.Add(typeof(MlnetAnchorBenchmark).Assembly.Location);
            foreach (var a in args) start.ArgumentList.Add(a);
            start.ArgumentList.Add("--side");
            start.ArgumentList.Add(side);
            using var child = Process.Start(start)!;
            var line = child.StandardOutput.ReadToEnd().Trim().Split('\n').LastOrDefault(l => l.StartsWith('{'));
            child.WaitForExit();
            if (child.ExitCode != 0 || line is null)
            {
                childFailed = true;
                var failed = new BenchmarkResult().Set("side", side).Set("error", $"the child process exited with {child.ExitCode}; see stderr");
                results.Add(failed);
                Console.WriteLine(failed.ToJson());
                continue;
            }
            Console.WriteLine(line);
            results.Add(BenchmarkResult.FromJson(line));
        }
        Console.WriteLine();
        Console.WriteLine("| trainer | model | trained / total parameters | training samples/s | scoring samples/s | peak RSS MiB |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var r in results)
            Console.WriteLine(r.Text("error") is { } error
                ? $"| {r.Text("trainer") ?? r.Text("side")} | {r.Text("model")} | {r.Number("trainable_parameters"):N0} / {r.Number("parameters"):N0} | failed: {error} in {r.Text("failing_member")}; disposed at construction: {r.Text("disposed_at_construction")} | | {r.Number("peak_rss_mib"):F0} |"
                : $"| {r.Text("trainer")} | {r.Text("model")} | {r.Number("trainable_parameters"):N0} / {r.Number("parameters"):N0} | {r.Number("train_samples_per_s"):F1} | {r.Number("infer_samples_per_s"):F1} | {r.Number("peak_rss_mib"):F0} |");
        return childFailed ? 1 : 0;   // a trainer that fails inside its child is a measured outcome, not a failed run
    }

    /// <summary>One side in this process: "mlnet" (ML.NET's trainer), "lora" or "full" (ours on <see cref="BenchmarkOptions.Model"/>).</summary>
    public static BenchmarkResult RunSide(BenchmarkOptions o)
    {
        if (o.Data is null) throw new ArgumentException("--mode mlnet-anchor needs --data <sst2 folder>");
        var ml = new MLContext(seed: o.Seed);
        var rows = File.ReadLines(Path.Combine(o.Data, "train.tsv")).Skip(1).Take(o.Samples)
            .Select(l => l.Split('\t', 2)).Select(p => new Sentence { Label = p[0], Text = p[1] }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var result = new BenchmarkResult().Set("mode", "mlnet-anchor").Set("side", o.Side).Set("samples", rows.Count).Set("batch", o.Batch).Set("epochs", 1);
        return o.Side == "mlnet" ? RunMlnet(ml, data, rows.Count, o, result) : RunOurs(ml, data, rows.Count, o, result);
    }

    static BenchmarkResult RunMlnet(MLContext ml, IDataView data, int count, BenchmarkOptions o, BenchmarkResult result)
    {
        var folder = Path.Combine(Path.GetTempPath(), $"lora-mlnet-anchor-{Environment.ProcessId}");
        Directory.CreateDirectory(Path.Combine(folder, "mlnet"));
        try
        {
            ml.TempFilePath = folder;
            long parameters = PlaceRandomNasBert(Path.Combine(folder, "mlnet", NasBertFile), out var disposed);
            if (disposed.Length > 0) result.Set("disposed_at_construction", disposed);
            var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
                .Append(ml.MulticlassClassification.Trainers.TextClassification(labelColumnName: "Label", sentence1ColumnName: "Text",
                    batchSize: o.Batch, maxEpochs: 1));
            result.Set("trainer", "ML.NET TextClassification (full fine-tuning)").Set("model", "NAS-BERT (24 layers, random weights)")
                .Set("parameters", parameters).Set("trainable_parameters", parameters);
            try
            {
                var (model, trainSeconds) = Timed(() => pipeline.Fit(data));
                var (_, scoreSeconds) = Timed(() => ml.Data.CreateEnumerable<ScoreRow>(model.Transform(data), reuseRowObject: true).Count());
                result.Set("train_samples_per_s", count / trainSeconds).Set("infer_samples_per_s", count / scoreSeconds);
            }
            catch (Exception e)
            {
                // Recorded, not hidden: which exception, and the innermost ML.NET member it came through.
                var frame = new StackTrace(e).GetFrames().Select(f => f.GetMethod()).FirstOrDefault(m => m?.DeclaringType?.Namespace?.StartsWith("Microsoft.ML.TorchSharp", StringComparison.Ordinal) == true);
                result.Set("error", $"{e.GetType().Name}: {e.Message}").Set("failing_member", frame is null ? null : $"{frame.DeclaringType!.FullName}.{frame.Name}");
                Console.Error.WriteLine(e);
                if (disposed.Length > 0)
                    Console.Error.WriteLine($"Cause: constructing the model disposed {disposed} (ML.NET's ModelUtils.InitXavierUniform / " +
                        "InitZeros dispose the tensor they initialise under TorchSharp 0.107), so the first forward pass fails.");
            }
            return result.Set("peak_rss_mib", PeakMemory.PeakRssMiB());
        }
        finally
        {
            try { Directory.Delete(folder, recursive: true); } catch (IOException) { }
        }
    }

    static BenchmarkResult RunOurs(MLContext ml, IDataView data, int count, BenchmarkOptions o, BenchmarkResult result)
    {
        if (o.Model is null) throw new ArgumentException("--mode mlnet-anchor needs --model <Hugging Face folder> for our side");
        var options = new LoraTextClassifierOptions
        {
            ModelPath = o.Model, LabelColumnName = "Label", TextColumnName = "Text", BatchSize = o.Batch, Epochs = 1,
            LearningRate = o.Side == "full" ? 1e-4 : 1e-3, FineTuning = o.Side == "full" ? FineTuning.Full : FineTuning.Lora,
        };
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.LoraTextClassifier(options));
        var (model, trainSeconds) = Timed(() => pipeline.Fit(data));
        var (_, scoreSeconds) = Timed(() => ml.Data.CreateEnumerable<ScoreRow>(model.Transform(data), reuseRowObject: true).Count());
        var lora = PipelineStages.LoraStage(model);
        var counts = ParameterCounts.Of(lora.Model);
        result.Set("trainer", o.Side == "full" ? "LoraTextClassifier, FineTuning.Full" : "LoraTextClassifier, LoRA (rank 8, all layers)")
            .Set("model", $"{lora.Info.BaseModel.ModelType} {Path.GetFileName(Path.TrimEndingDirectorySeparator(o.Model))}")
            .Set("parameters", counts.Total).Set("trainable_parameters", counts.Trainable)
            .Set("train_samples_per_s", count / trainSeconds).Set("infer_samples_per_s", count / scoreSeconds)
            .Set("peak_rss_mib", PeakMemory.PeakRssMiB());
        lora.Dispose();
        return result;
    }

    sealed class ScoreRow
    {
        public float[] Score { get; set; } = [];
    }

    static (T Value, double Seconds) Timed<T>(Func<T> work)
    {
        var clock = Stopwatch.StartNew();
        var value = work();
        return (value, clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// Writes a NAS-BERT encoder with random weights, built by ML.NET's own (internal) model class with the trainer's
    /// default options and tokenizer, to <paramref name="path"/>; returns the parameter count of the whole classifier
    /// (live parameters only) and names the weights its construction disposed.
    /// </summary>
    static long PlaceRandomNasBert(string path, out string disposed)
    {
        disposed = "";
        var assembly = typeof(TorchSharpCatalog).Assembly;
        const BindingFlags Any = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance;
        var tokenizer = (EnglishRobertaTokenizer)assembly.GetType("Microsoft.ML.TorchSharp.Extensions.TokenizerExtensions", throwOnError: true)!
            .GetMethod("GetInstance", Any)!.Invoke(null, new object?[] { null })!;
        var modelType = assembly.GetType("Microsoft.ML.TorchSharp.NasBert.Models.ModelForPrediction", throwOnError: true)!;
        var options = new TextClassificationTrainer.TextClassificationOptions();
        using var model = (torch.nn.Module)Activator.CreateInstance(modelType, Any, null,
            new object[] { options, tokenizer.PadIndex, tokenizer.SymbolsCount, 2 }, null)!;
        var encoder = (torch.nn.Module)modelType.GetMethod("GetEncoder", Any)!.Invoke(model, null)!;
        encoder.save(path);
        // Count from the saved file: ML.NET's initialisers dispose some weights they fill under TorchSharp 0.107
        // (docs/benchmarks.md), so the live module cannot be asked; the head adds a dense layer and the class scores.
        // Under TorchSharp 0.107 ML.NET's initialisers (ModelUtils.InitXavierUniform / InitZeros: `using var t =
        // torch.nn.init.xavier_uniform_(w)`) dispose the weight they fill, because torch.nn.init.*_ now returns its
        // argument instead of a new handle. Record which tensors that left dead in the encoder's embedding transfer.
        var transfer = encoder.GetType().GetField("EmbedTransfer", Any)?.GetValue(encoder);
        long lost = 0;
        if (transfer?.GetType().GetField("HiddenTransfer", Any)?.GetValue(transfer) is global::TorchSharp.Modules.Linear linear)
        {
            disposed = string.Join(", ", new[] { ("weight", linear.weight), ("bias", linear.bias) }
                .Where(t => t.Item2 is null || t.Item2.IsInvalid).Select(t => "EmbedTransfer.HiddenTransfer." + t.Item1));
            if (disposed.Length > 0) lost = linear.in_features * linear.out_features + linear.out_features;
        }
        // The disposed weights are no longer parameters of the module; count them back in (shape from the layer).
        return model.parameters().Sum(p => p.numel()) + lost;
    }
}
