namespace Microsoft.ML.LoRA.Training;

/// <summary>Splits examples into train and validation parts with the same class proportions, reproducibly for a seed.</summary>
public static class StratifiedSplit
{
    /// <summary>
    /// Holds out round(fraction × n_c) examples of each class c (at least one where a class has two or more and the
    /// fraction is positive), chosen by a generator seeded with <paramref name="seed"/>. Original order is kept inside each part.
    /// </summary>
    public static (List<T> Train, List<T> Validation) Split<T>(IReadOnlyList<T> items, Func<T, int> label, double fraction, int seed)
    {
        if (fraction <= 0) return (items.ToList(), new List<T>());
        if (fraction >= 1) throw new ArgumentOutOfRangeException(nameof(fraction), "the validation fraction must be below 1");
        var random = new Random(seed);
        var held = new HashSet<int>();
        foreach (var group in Enumerable.Range(0, items.Count).GroupBy(i => label(items[i])).OrderBy(g => g.Key))
        {
            var indices = group.ToArray();
            random.Shuffle(indices);
            int take = (int)Math.Round(fraction * indices.Length, MidpointRounding.AwayFromZero);
            if (take == 0 && indices.Length >= 2) take = 1;
            if (take >= indices.Length) take = indices.Length - 1;
            foreach (var i in indices.Take(take)) held.Add(i);
        }
        var train = new List<T>();
        var validation = new List<T>();
        for (int i = 0; i < items.Count; i++) (held.Contains(i) ? validation : train).Add(items[i]);
        return (train, validation);
    }
}
