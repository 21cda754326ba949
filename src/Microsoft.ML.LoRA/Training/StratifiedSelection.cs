namespace Microsoft.ML.LoRA.Training;

/// <summary>
/// Chooses validation rows so that every label keeps its share: within each label (labels taken in
/// the given order), a shuffle seeded once for the whole selection picks round(n × fraction) rows, at least one
/// and at most n − 1 for a label with two rows or more; a label seen once stays in training. The same labels,
/// fraction and seed always give the same rows.
/// </summary>
public static class StratifiedSelection
{
    /// <summary>For each row, whether it goes to validation.</summary>
    public static bool[] ValidationRows<TKey>(IReadOnlyList<TKey> labels, double fraction, int seed, IComparer<TKey>? order = null)
        where TKey : notnull
    {
        if (!(fraction > 0 && fraction < 1)) throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "The validation fraction must be between 0 and 1 (exclusive).");
        var chosen = new bool[labels.Count];
        var random = new Random(seed);
        foreach (var group in Enumerable.Range(0, labels.Count).GroupBy(i => labels[i]).OrderBy(g => g.Key, order ?? Comparer<TKey>.Default))
        {
            var rows = group.ToArray();
            random.Shuffle(rows);
            int take = rows.Length >= 2 ? Math.Clamp((int)Math.Round(rows.Length * fraction, MidpointRounding.AwayFromZero), 1, rows.Length - 1) : 0;
            for (int k = 0; k < take; k++) chosen[rows[k]] = true;
        }
        return chosen;
    }

    /// <summary>Splits a list into train and validation parts (original order kept in each).</summary>
    public static (List<T> Train, List<T> Validation) Split<T>(IReadOnlyList<T> items, Func<T, int> label, double fraction, int seed)
    {
        var chosen = ValidationRows(items.Select(label).ToArray(), fraction, seed);
        var train = new List<T>();
        var validation = new List<T>();
        for (int i = 0; i < items.Count; i++) (chosen[i] ? validation : train).Add(items[i]);
        return (train, validation);
    }
}
