using System.Text.Json;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>
/// Writes the IMDb part of the fine-tuning quality table (docs/quality.md) as JSON Lines (<c>{"label":1,"text":"..."}</c>):
/// a balanced training set drawn from train.csv.gz and a balanced test set drawn from test.csv.gz, each the same
/// number of reviews per class picked by a seeded shuffle (the files list all positive reviews first, so their first
/// rows would be one class only).
/// </summary>
public static class QualityData
{
    /// <summary>Writes imdb-train.jsonl and imdb-test.jsonl into <paramref name="output"/>.</summary>
    public static void WriteImdb(string imdbFolder, string output, int perClass, int seed)
    {
        Directory.CreateDirectory(output);
        Write(Path.Combine(imdbFolder, "train.csv.gz"), Path.Combine(output, "imdb-train.jsonl"), perClass, seed);
        Write(Path.Combine(imdbFolder, "test.csv.gz"), Path.Combine(output, "imdb-test.jsonl"), perClass, seed);
    }

    /// <summary>
    /// Writes imdb-ratings-train.jsonl and imdb-ratings-test.jsonl (<c>{"rating":8,"text":"..."}</c>) into
    /// <paramref name="output"/>: the first <paramref name="trainRows"/> and <paramref name="testRows"/> reviews of a
    /// seeded shuffle of train.csv.gz and test.csv.gz, for the regression figures of docs/regression.md.
    /// </summary>
    public static void WriteImdbRatings(string imdbFolder, string output, int trainRows, int testRows, int seed)
    {
        Directory.CreateDirectory(output);
        foreach (var (file, rows) in new[] { ("train", trainRows), ("test", testRows) })
        {
            var all = ImdbReviews.Read(Path.Combine(imdbFolder, file + ".csv.gz"), "rating").ToArray();
            new Random(seed).Shuffle(all);
            if (all.Length < rows) throw new InvalidDataException($"{file}.csv.gz has {all.Length} reviews, fewer than {rows}");
            AtomicFile.WriteAllText(Path.Combine(output, $"imdb-ratings-{file}.jsonl"), string.Concat(all.Take(rows).Select(r =>
                JsonSerializer.Serialize(new { rating = r.Label, text = r.Text.Replace("<br />", " ") }) + "\n")));
        }
    }

    /// <summary>The rows a balanced, seeded sample of <paramref name="perClass"/> per label keeps, classes interleaved.</summary>
    public static List<(int Label, string Text)> Balanced(IReadOnlyList<(int Label, string Text)> rows, int perClass, int seed)
    {
        var random = new Random(seed);
        var byLabel = rows.GroupBy(r => r.Label).OrderBy(g => g.Key).Select(g =>
        {
            var group = g.ToArray();
            random.Shuffle(group);
            if (group.Length < perClass) throw new InvalidDataException($"label {g.Key} has {group.Length} rows, fewer than {perClass}");
            return group.Take(perClass).ToList();
        }).ToList();
        return Enumerable.Range(0, perClass).SelectMany(i => byLabel.Select(g => g[i])).ToList();
    }

    static void Write(string source, string target, int perClass, int seed)
    {
        var rows = Balanced(ImdbReviews.Read(source), perClass, seed);
        AtomicFile.WriteAllText(target, string.Concat(rows.Select(r =>
            JsonSerializer.Serialize(new { label = r.Label, text = r.Text.Replace("<br />", " ") }) + "\n")));
    }
}
