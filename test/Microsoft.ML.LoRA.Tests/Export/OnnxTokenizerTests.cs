using Microsoft.ML.LoRA.Diagnostics;
using Microsoft.ML.LoRA.Export;
using Microsoft.ML.LoRA.Inference;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Onnx;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Tokenization;

namespace Microsoft.ML.LoRA.Tests.Export;

/// <summary>
/// Each exportable family's tokenizer convention travels with the export: the scorer, reading lora-onnx.json and the
/// copied files, tokenizes texts (and text pairs) to the library's ids and scores them with the library's logits.
/// </summary>
public class OnnxTokenizerTests
{
    static readonly string[] Texts = { "A short one.", "", "Free entry in 2 a wkly comp to win FA Cup final tkts! Text FA to 87121.", "héllo wörld  tabs\tand\nlines" };
    static readonly string[] Pairs = { "second text", "x", "", "the other half of the pair" };

    [Theory]
    [InlineData("bert")]
    [InlineData("distilbert")]
    [InlineData("roberta")]
    [InlineData("gpt2")]
    [InlineData("llama")]
    [InlineData("deberta-v2")]
    public void The_folder_alone_tokenizes_and_scores_as_the_library(string family)
    {
        using var dir = new TempDir();
        var checkpoint = TinyCheckpoint.Create(family, dir.File("model"), seed: 5);
        using var model = PretrainedModel.Load(checkpoint, numLabels: 3);
        var encoder = TextEncoders.FromFolder(checkpoint, model.Config, maxLength: 24);
        var torch = new ClassifierScorer(model, encoder, batchSize: 2);

        OnnxExport.Export(model, new[] { "a", "b", "c" }, dir.File("onnx"), tokenizerFolder: checkpoint, maxSequenceLength: 24);
        using var scorer = OnnxTextClassifier.Load(dir.File("onnx"), new OnnxScoringOptions { BatchSize = 3 });

        foreach (var (text, pair) in Texts.Zip(Pairs))
            scorer.Encoder!.Encode(text, pair).Should().BeEquivalentTo(encoder.Encode(text, pair), o => o.WithStrictOrdering(), $"'{text}' + '{pair}'");
        scorer.Encoder!.PadTokenId.Should().Be(encoder.PadTokenId);
        LogitsCases.MaxAbsDifference(scorer.Logits(Texts), torch.Logits(Texts)).Should().BeLessThan(1e-4);
        LogitsCases.MaxAbsDifference(scorer.Logits(Texts, Pairs), torch.Logits(Texts, Pairs)).Should().BeLessThan(1e-4);
    }
}
