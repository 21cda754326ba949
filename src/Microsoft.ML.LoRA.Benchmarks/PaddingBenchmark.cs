using Microsoft.ML.LoRA.Training;
using TorchSharp.Modules;
using System.Diagnostics;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.Tokenizers;
using TorchSharp;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>
/// Real text lengths: IMDb reviews tokenized with the BERT WordPiece tokenizer and truncated to --max-length, run
/// (LoRA training for one pass, then inference) once with every batch padded to --max-length and once with
/// the library's length bucketing (<see cref="BatchPlanner"/>, what ClassifierTrainer and ClassifierScorer use) + dynamic
/// padding. Same model, same examples, same number of batches.
/// </summary>
public static class PaddingBenchmark
{
    /// <summary>Runs <paramref name="o"/> (mode padding).</summary>
    public static BenchmarkResult Run(BenchmarkOptions o)
    {
        var config = TransformerConfig.Load(o.Config!);
        if (o.MaxLength > config.MaxPositions) throw new ArgumentException($"--max-length {o.MaxLength} exceeds the model's {config.MaxPositions} positions");
        var (tokens, labels, tokenizeSeconds) = Tokenize(o);
        var lengths = tokens.Select(t => t.Length).ToArray();
        long padId = config.PadTokenId ?? 0;

        using var model = BenchmarkModels.Create(config, o.Seed);
        BenchmarkModels.ApplyLora(model, o.Rank, o.Alpha, o.Dropout);
        using var optimizer = BenchmarkModels.Optimizer(model, o);

        var inOrder = Enumerable.Range(0, tokens.Count).Chunk(o.Batch).ToArray();   // what a loader without bucketing does
        var trainBuckets = BatchPlanner.TrainingBatches(lengths, o.Batch, new Random(o.Seed), bucketByLength: true);
        var inferBuckets = BatchPlanner.InferenceBatches(lengths, o.Batch);
        var leastPadded = SortedBatches(lengths, o.Batch);

        LabeledBatch Padded(int[] b) => DynamicPadding.Collate(tokens, labels, b, padId, o.MaxLength);
        LabeledBatch Dynamic(int[] b) => DynamicPadding.Collate(tokens, labels, b, padId);

        model.train();
        for (int i = 0; i < o.Warmup; i++) Train(model, optimizer, inOrder.Take(1), Padded);
        double trainPadded = Train(model, optimizer, inOrder, Padded);
        double trainBucketed = Train(model, optimizer, trainBuckets, Dynamic);

        model.eval();
        BenchmarkModels.MergeAll(model);
        Infer(model, inOrder.Take(1), Padded);
        double inferPadded = Infer(model, inOrder, Padded);
        double inferBucketed = Infer(model, inferBuckets, Dynamic);

        return new BenchmarkResult()
            .Set("anchor", "torchsharp")
            .Set("torch", torch.__version__)
            .Set("threads", torch.get_num_threads())
            .Set("mode", "padding")
            .Set("batch", o.Batch)
            .Set("max_length", o.MaxLength)
            .Set("samples", tokens.Count)
            .Set("config", Path.GetFileNameWithoutExtension(o.Config))
            .Set("mean_tokens", lengths.Average())
            .Set("tokenize_ms", tokenizeSeconds * 1000)
            .Set("real_token_share_padded", RealTokenShare(lengths, inOrder, o.MaxLength))
            .Set("real_token_share_bucketed", RealTokenShare(lengths, trainBuckets))
            .Set("token_ceiling", Work(lengths, inOrder, 1, o.MaxLength) / Work(lengths, leastPadded, 1))
            .Set("attention_ceiling", Work(lengths, inOrder, 2, o.MaxLength) / Work(lengths, leastPadded, 2))
            .Set("train_padded_samples_per_s", tokens.Count / trainPadded)
            .Set("train_bucketed_samples_per_s", tokens.Count / trainBucketed)
            .Set("train_speedup", trainPadded / trainBucketed)
            .Set("infer_padded_samples_per_s", tokens.Count / inferPadded)
            .Set("infer_bucketed_samples_per_s", tokens.Count / inferBucketed)
            .Set("infer_speedup", inferPadded / inferBucketed)
            .Set("peak_rss_mib", PeakMemory.PeakRssMiB());
    }

    /// <summary>The first --samples reviews of a seeded shuffle, as [CLS] ... [SEP] ids truncated to --max-length.</summary>
    static (List<int[]> Tokens, List<int> Labels, double Seconds) Tokenize(BenchmarkOptions o)
    {
        var rows = ImdbReviews.Read(o.Data ?? throw new ArgumentException("--data <imdb csv.gz> is required for --mode padding"));
        var tokenizer = BertTokenizer.Create(o.Vocab ?? throw new ArgumentException("--vocab <vocab.txt> is required for --mode padding"));
        var picked = rows.ToArray();
        new Random(o.Seed).Shuffle(picked);
        var clock = Stopwatch.StartNew();
        var tokens = new List<int[]>();
        var labels = new List<int>();
        foreach (var (label, text) in picked.Take(o.Samples))
        {
            var ids = tokenizer.EncodeToIds(text, addSpecialTokens: true).ToArray();
            if (ids.Length > o.MaxLength) ids = ids[..(o.MaxLength - 1)].Append(ids[^1]).ToArray(); // keep [SEP]
            tokens.Add(ids);
            labels.Add(label);
        }
        return (tokens, labels, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Share of the padded tokens that are real when each batch is padded to <paramref name="padTo"/> (or its own longest).</summary>
    static double RealTokenShare(IReadOnlyList<int> lengths, IReadOnlyCollection<int[]> batches, int? padTo = null)
    {
        double total = Work(lengths, batches, 1, padTo);
        return total == 0 ? 1 : batches.Sum(b => b.Sum(i => (double)lengths[i])) / total;
    }

    /// <summary>
    /// The batches with the least padding any grouping of these examples into batches of <paramref name="batch"/> can
    /// have: cut from the examples sorted by length (the sum of the batches' widths is then smallest).
    /// </summary>
    static List<int[]> SortedBatches(IReadOnlyList<int> lengths, int batch) => BatchPlanner.InferenceBatches(lengths, batch);

    /// <summary>
    /// Σ over batches of batch size × width^<paramref name="power"/> (width: <paramref name="padTo"/> or the batch's
    /// longest): the positions a batch computes (power 1: the projections, feed-forward and norms, per token) or its
    /// query-key pairs (power 2: the attention matrices). Padded work over the least-padded grouping's is the most
    /// that grouping by length can speed that part up by, whatever computes it.
    /// </summary>
    static double Work(IReadOnlyList<int> lengths, IEnumerable<int[]> batches, int power, int? padTo = null) =>
        batches.Sum(b => b.Length * Math.Pow(padTo ?? b.Max(i => lengths[i]), power));

    static double Train(Models.SequenceClassifier model, AdamWOptimizer optimizer, IEnumerable<int[]> batches, Func<int[], LabeledBatch> collate)
    {
        var clock = Stopwatch.StartNew();
        foreach (var b in batches)
        {
            using var batch = collate(b);
            TrainingBenchmark.TrainStep(model, optimizer, batch, null);
        }
        return clock.Elapsed.TotalSeconds;
    }

    static double Infer(Models.SequenceClassifier model, IEnumerable<int[]> batches, Func<int[], LabeledBatch> collate)
    {
        var clock = Stopwatch.StartNew();
        using var _ = torch.inference_mode();
        foreach (var b in batches)
        {
            using var batch = collate(b);
            using var scope = torch.NewDisposeScope();
            model.forward(batch.Input);
        }
        return clock.Elapsed.TotalSeconds;
    }
}
