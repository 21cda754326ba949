using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Tokenization;

/// <summary>The real bert-base-uncased vocab.txt read independently of the library: a token's id is its line index.</summary>
internal static class BertVocab
{
    static readonly Lazy<Dictionary<string, int>> Ids = new(() =>
    {
        var lines = File.ReadAllLines(Path.Combine(SharedData.BertTokenizer, "vocab.txt"));
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < lines.Length; i++) ids[lines[i]] = i;
        return ids;
    });

    public static int Id(string token) =>
        Ids.Value.TryGetValue(token, out var id) ? id : throw new ArgumentException($"'{token}' is not in bert-base-uncased's vocab.txt");

    public static int[] Of(params string[] tokens) => tokens.Select(Id).ToArray();

    public static bool Contains(string token) => Ids.Value.ContainsKey(token);
}
