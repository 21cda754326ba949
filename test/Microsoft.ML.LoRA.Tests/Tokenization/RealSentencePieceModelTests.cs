using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Tokenization;

namespace Microsoft.ML.LoRA.Tests.Tokenization;

/// <summary>
/// tokenizer.model (Llama-2 / Mistral / TinyLlama's kind: BPE, byte fallback, split digits, no normaliser) and spm.model
/// (DeBERTa-v3's kind: Unigram with the nmt_nfkc precompiled character map) trained by the real SentencePiece library,
/// against the ids SentencePiece itself gives with the special tokens transformers' LlamaTokenizer and
/// DebertaV2Tokenizer add (Fixtures/sentencepiece, made by make_fixtures.py): data rows and hard cases (runs of spaces,
/// tabs and newlines, NFKC-folded full-width letters and ligatures, characters outside the vocabulary, emoji, empty text).
/// </summary>
public class RealSentencePieceModelTests
{
    static string Folder(string model) =>
        Path.Combine(SharedData.RepoRoot, "test", "Microsoft.ML.LoRA.Tests", "Fixtures", "sentencepiece", model);

    [Fact]
    public void A_Llama_tokenizer_model_gives_SentencePiece_s_ids_for_every_text()
    {
        var (texts, expected, encoder, _) = Load("llama");

        Mismatches(texts, expected, encoder).Should().BeEmpty();
    }

    [Fact]
    public void A_DeBERTa_spm_model_gives_SentencePiece_s_ids_but_where_two_segmentations_score_the_same()
    {
        // Word by word, as transformers' default (fast) tokenizer runs spm.model; SentencePiece's whole-text lattice,
        // summing scores in float32, may break an exact tie the other way. Any difference must be such a tie: the same
        // text cut into pieces whose scores add up to the same total.
        var (texts, expected, encoder, model) = Load("deberta-v3");
        var mismatches = texts.Select((text, i) => (i, got: encoder.Encode(text).InputIds.ToArray()))
            .Where(c => !c.got.SequenceEqual(expected[c.i])).ToList();

        mismatches.Should().HaveCountLessThanOrEqualTo(2);
        foreach (var (i, got) in mismatches)
        {
            string Text(IEnumerable<int> ids) => string.Concat(ids.Select(id => model.Pieces[id].Piece));
            double Score(IEnumerable<int> ids) => ids.Sum(id => (double)model.Pieces[id].Score);
            Text(got).Should().Be(Text(expected[i]), $"text {i} must be cut into other pieces of the same text");
            Score(got).Should().BeApproximately(Score(expected[i]), 1e-4, $"text {i} must be a tie");
        }
    }

    static List<string> Mismatches(List<string> texts, List<int[]> expected, ITextEncoder encoder) =>
        texts.Select((text, i) => (text, want: expected[i], got: encoder.Encode(text).InputIds.ToArray()))
            .Where(c => !c.got.SequenceEqual(c.want))
            .Select(c => $"{System.Text.Json.JsonSerializer.Serialize(c.text)}: want [{string.Join(",", c.want)}] got [{string.Join(",", c.got)}]")
            .ToList();

    /// <summary>A hard case is the text itself; a data row is named by file and line, read as make_fixtures.py read it.</summary>
    static string Text(JsonNode? node)
    {
        if (node is JsonValue value) return value.GetValue<string>();
        string file = node!["file"]!.GetValue<string>();
        int line = node["line"]!.GetValue<int>();
        var (encoding, separator) = file.StartsWith("trec/", StringComparison.Ordinal) ? (System.Text.Encoding.Latin1, ' ') : (System.Text.Encoding.UTF8, '\t');
        string row = File.ReadLines(SharedData.Data(file.Split('/')), encoding).ElementAt(line);
        return row[(row.IndexOf(separator) + 1)..];
    }

    static (List<string> Texts, List<int[]> Expected, ITextEncoder Encoder, SentencePieceModelFile Model) Load(string name)
    {
        var folder = Folder(name);
        var config = TransformerConfig.Load(Path.Combine(folder, "config.json"));
        var encoder = TextEncoders.FromFolder(folder, config, maxLength: 512);
        var cases = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "cases.json")))!;
        var texts = cases["texts"]!.AsArray().Select(Text).ToList();
        var expected = cases["input_ids"]!.AsArray().Select(r => r!.AsArray().Select(i => i!.GetValue<int>()).ToArray()).ToList();
        texts.Should().HaveCount(132);
        var modelFile = Path.Combine(folder, name == "llama" ? "tokenizer.model" : "spm.model");
        return (texts, expected, encoder, SentencePieceModelFile.Read(File.ReadAllBytes(modelFile), modelFile));
    }

    [Fact]
    public void The_hard_cases_exercise_what_they_claim()
    {
        // Byte fallback: the emoji are outside the Llama model's pieces, so they must come out as <0x..> byte tokens
        // (ids 3..258); NFKC: full-width "ＡＢＣ" must tokenize as the ASCII "ABC" does in the DeBERTa model.
        var llama = JsonNode.Parse(File.ReadAllText(Path.Combine(Folder("llama"), "cases.json")))!;
        var emoji = llama["texts"]!.AsArray().Select(Text).ToList().FindIndex(t => t.StartsWith("Emoji", StringComparison.Ordinal));
        llama["input_ids"]![emoji]!.AsArray().Select(i => i!.GetValue<int>()).Should().Contain(i => i >= 3 && i <= 258);

        var folder = Folder("deberta-v3");
        var encoder = TextEncoders.FromFolder(folder, TransformerConfig.Load(Path.Combine(folder, "config.json")), maxLength: 512);
        encoder.Encode("ＡＢＣ１２３ ﬁne").InputIds.Should().Equal(encoder.Encode("ABC123 fine").InputIds);
    }
}
