namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>
/// Groups examples of similar length into the same batch, so that dynamic padding (each batch padded to its own
/// longest example) pads little. Training keeps randomness: the examples are shuffled, cut into pools of
/// <see cref="PoolBatches"/> batches, each pool is sorted by length and cut into batches, and the batches are
/// shuffled again. Inference (<see cref="SortedBatches"/>) sorts everything.
/// </summary>
/// <remarks>
/// The library's training loop should adopt this together with a collator that pads to the batch's longest example
/// (the BatchCollator being built in the tokenizer layer); this class only chooses which examples go together.
/// </remarks>
public sealed class LengthBucketing
{
    /// <summary>Examples per batch.</summary>
    public int BatchSize { get; }
    /// <summary>Batches per pool sorted together: larger pools pad less, smaller pools keep more randomness.</summary>
    public int PoolBatches { get; }

    readonly Random _random;

    /// <summary>Creates the bucketing for <paramref name="batchSize"/> examples per batch.</summary>
    public LengthBucketing(int batchSize, int poolBatches = 50, int seed = 0)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize));
        if (poolBatches < 1) throw new ArgumentOutOfRangeException(nameof(poolBatches));
        BatchSize = batchSize;
        PoolBatches = poolBatches;
        _random = new Random(seed);
    }

    /// <summary>One epoch of training batches: indices into <paramref name="lengths"/>, grouped by length.</summary>
    public IReadOnlyList<int[]> TrainingBatches(IReadOnlyList<int> lengths)
    {
        var order = Enumerable.Range(0, lengths.Count).ToArray();
        _random.Shuffle(order);
        var batches = new List<int[]>();
        int pool = BatchSize * PoolBatches;
        for (int start = 0; start < order.Length; start += pool)
        {
            var sorted = order.Skip(start).Take(pool).OrderBy(i => lengths[i]).ToArray();
            batches.AddRange(sorted.Chunk(BatchSize));
        }
        var shuffled = batches.ToArray();
        _random.Shuffle(shuffled);
        return shuffled;
    }

    /// <summary>Inference batches: every example sorted by length (callers put the outputs back in input order).</summary>
    public IReadOnlyList<int[]> SortedBatches(IReadOnlyList<int> lengths) =>
        Enumerable.Range(0, lengths.Count).OrderBy(i => lengths[i]).Chunk(BatchSize).ToArray();

    /// <summary>Batches in input order, for comparison (what a loader without bucketing does).</summary>
    public static IReadOnlyList<int[]> InOrder(int count, int batchSize) =>
        Enumerable.Range(0, count).Chunk(batchSize).ToArray();

    /// <summary>Share of the padded tokens that are real tokens when each batch is padded to <paramref name="padTo"/> (or its own longest).</summary>
    public static double RealTokenShare(IReadOnlyList<int> lengths, IEnumerable<int[]> batches, int? padTo = null)
    {
        long real = 0, total = 0;
        foreach (var b in batches)
        {
            int width = padTo ?? b.Max(i => lengths[i]);
            real += b.Sum(i => (long)lengths[i]);
            total += (long)width * b.Length;
        }
        return total == 0 ? 1 : (double)real / total;
    }
}
