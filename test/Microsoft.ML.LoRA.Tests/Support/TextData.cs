using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.LoRA.Tests.Support;

/// <summary>Rows of the real labelled datasets in ../shared/data, as ML.NET data views.</summary>
public static class TextData
{
    public sealed class LabeledText
    {
        [LoadColumn(0)] public string Label { get; set; } = "";
        [LoadColumn(1)] public string Text { get; set; } = "";
    }

    public sealed class BinaryText
    {
        public bool Label { get; set; }
        public string Text { get; set; } = "";
    }

    /// <summary>SMS spam rows (label "ham"/"spam"), taking rows [skip, skip+take) of the file.</summary>
    public static List<LabeledText> SmsSpam(int skip, int take) =>
        File.ReadLines(SharedData.Data("sms_spam", "SMSSpamCollection")).Skip(skip).Take(take)
            .Select(l => l.Split('\t', 2)).Select(p => new LabeledText { Label = p[0], Text = p[1] }).ToList();

    /// <summary>SST-2 rows (label "0"/"1"; the files have a header, label first, then the sentence).</summary>
    public static List<LabeledText> Sst2(string file, int skip, int take) =>
        File.ReadLines(SharedData.Data("sst2", file)).Skip(1 + skip).Take(take)
            .Select(x => x.Split('\t', 2)).Select(p => new LabeledText { Label = p[0], Text = p[1] }).ToList();

    /// <summary>
    /// TREC question classification rows with the coarse label (ABBR, DESC, ENTY, HUM, LOC, NUM): <paramref name="file"/>
    /// is train_5500.label or TREC_10.label (latin-1, <c>COARSE:fine question</c>).
    /// </summary>
    public static List<LabeledText> Trec(string file, int take) =>
        File.ReadLines(SharedData.Data("trec", file), System.Text.Encoding.Latin1).Take(take)
            .Select(l => l.Split(' ', 2)).Select(p => new LabeledText { Label = p[0].Split(':')[0], Text = p[1] }).ToList();

    /// <summary>Writes <paramref name="rows"/> to <paramref name="path"/> as a TSV file with a label/text header; returns the path.</summary>
    public static string WriteTsv(string path, IEnumerable<LabeledText> rows)
    {
        File.WriteAllLines(path, rows.Select(r => $"{r.Label}\t{r.Text.Replace('\t', ' ')}").Prepend("label\ttext"));
        return path;
    }

    /// <summary>A balanced sample: up to <paramref name="perClass"/> rows of each label, classes interleaved.</summary>
    public static List<LabeledText> Balanced(IEnumerable<LabeledText> rows, int perClass)
    {
        var groups = rows.GroupBy(r => r.Label).OrderBy(g => g.Key).Select(g => g.Take(perClass).ToList()).ToList();
        var result = new List<LabeledText>();
        for (int i = 0; i < perClass; i++)
            foreach (var g in groups) if (i < g.Count) result.Add(g[i]);
        return result;
    }
}
