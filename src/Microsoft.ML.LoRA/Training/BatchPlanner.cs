namespace Microsoft.ML.LoRA.Training;

/// <summary>
/// Orders examples into batches. Training batches are shuffled with a seeded generator; with length bucketing the
/// shuffled order is cut into windows of many batches, each window sorted by length and split into batches, and the
/// batches shuffled again, so every epoch still sees every example once while padding shrinks. Inference batches
/// are cut from examples sorted by length (callers restore the original order).
/// </summary>
public static class BatchPlanner
{
    /// <summary>Batches per sorting window when bucketing.</summary>
    public const int WindowBatches = 50;

    /// <summary>One epoch's batches of example indices.</summary>
    public static List<int[]> TrainingBatches(IReadOnlyList<int> lengths, int batchSize, Random random, bool bucketByLength)
    {
        var order = Enumerable.Range(0, lengths.Count).ToArray();
        random.Shuffle(order);
        var batches = new List<int[]>();
        if (!bucketByLength)
        {
            for (int i = 0; i < order.Length; i += batchSize)
                batches.Add(order[i..Math.Min(order.Length, i + batchSize)]);
            return batches;
        }
        int window = batchSize * WindowBatches;
        for (int start = 0; start < order.Length; start += window)
        {
            var chunk = order[start..Math.Min(order.Length, start + window)];
            var sorted = chunk.OrderBy(i => lengths[i]).ToArray();   // OrderBy is stable: ties keep shuffled order
            for (int i = 0; i < sorted.Length; i += batchSize)
                batches.Add(sorted[i..Math.Min(sorted.Length, i + batchSize)]);
        }
        var shuffled = batches.ToArray();
        random.Shuffle(shuffled);
        return shuffled.ToList();
    }

    /// <summary>Inference batches over examples sorted by length (longest first, so memory peaks early).</summary>
    public static List<int[]> InferenceBatches(IReadOnlyList<int> lengths, int batchSize)
    {
        var sorted = Enumerable.Range(0, lengths.Count).OrderByDescending(i => lengths[i]).ToArray();
        var batches = new List<int[]>();
        for (int i = 0; i < sorted.Length; i += batchSize)
            batches.Add(sorted[i..Math.Min(sorted.Length, i + batchSize)]);
        return batches;
    }
}
