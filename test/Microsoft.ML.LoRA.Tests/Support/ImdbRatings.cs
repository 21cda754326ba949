using Microsoft.ML;
using Microsoft.ML.LoRA.Data;

namespace Microsoft.ML.LoRA.Tests.Support;

/// <summary>IMDb reviews with their 1-10 rating (../shared/data/imdb, columns label,rating,id,text), as regression rows.</summary>
public static class ImdbRatings
{
    public sealed class RatedText
    {
        public float Label { get; set; }
        public string Text { get; set; } = "";
    }

    /// <summary>
    /// The first <paramref name="take"/> reviews of a seeded shuffle of <paramref name="file"/> (train.csv.gz or
    /// test.csv.gz; the files list every positive review first), read with the library's own data loader.
    /// </summary>
    public static List<RatedText> Read(string file, int take, int seed)
    {
        var ml = new MLContext(seed: 0);
        var loaded = TextDataLoader.Load(ml, SharedData.Data("imdb", file), new TextDataFileOptions { TextColumn = "text", LabelColumn = "rating" });
        var rows = ml.Data.CreateEnumerable<TextRow>(loaded.Data, reuseRowObject: false)
            .Select(r => new RatedText { Label = float.Parse(r.Label, System.Globalization.CultureInfo.InvariantCulture), Text = r.Text.Replace("<br />", " ") })
            .ToArray();
        new Random(seed).Shuffle(rows);
        return rows.Take(take).ToList();
    }

    /// <summary>Writes rows as a CSV file with a rating,text header (texts quoted); returns the path.</summary>
    public static string WriteCsv(string path, IEnumerable<RatedText> rows, Func<RatedText, string>? label = null)
    {
        label ??= r => r.Label.ToString(System.Globalization.CultureInfo.InvariantCulture);
        File.WriteAllLines(path, rows.Select(r => $"{label(r)},\"{r.Text.Replace("\"", "\"\"")}\"").Prepend("rating,text"));
        return path;
    }

    sealed class TextRow
    {
        public string Label { get; set; } = "";
        public string Text { get; set; } = "";
    }
}
