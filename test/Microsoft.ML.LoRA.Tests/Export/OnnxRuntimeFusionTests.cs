using Microsoft.ML.LoRA.Diagnostics;
using Microsoft.ML.LoRA.Export;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Onnx;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.OnnxRuntime;

namespace Microsoft.ML.LoRA.Tests.Export;

/// <summary>
/// ONNX Runtime fuses each residual Add + LayerNormalization of the exported graph into SkipLayerNormalization once
/// the sequence length is known, which <see cref="OnnxScoringOptions.FixedSequenceLength"/> tells it; with the
/// graph's dynamic sequence axis it cannot (its fuser wants every dimension but the batch fixed).
/// </summary>
public class OnnxRuntimeFusionTests
{
    /// <summary>The operators of the graph ONNX Runtime runs after optimizing it with the scorer's session options.</summary>
    static Dictionary<string, int> OptimizedOperators(string folder, OnnxScoringOptions options)
    {
        var path = Path.Combine(folder, "optimized.onnx");
        using (var session = OnnxTextClassifier.CreateSessionOptions(options))
        {
            session.OptimizedModelFilePath = path;
            using (new InferenceSession(Path.Combine(folder, "model.onnx"), session)) { }
        }
        var text = System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(path));
        return new[] { "SkipLayerNormalization", "LayerNormalization" }
            .ToDictionary(op => op, op => System.Text.RegularExpressions.Regex.Matches(text, $@"\b{op}\b").Count);
    }

    [Fact]
    public void A_fixed_sequence_length_lets_onnx_runtime_fuse_every_residual_layer_norm_and_scores_as_the_dynamic_graph()
    {
        var cases = LogitsCases.Load(Path.Combine(SharedData.Fixture("bert"), "cases.json"));
        using var model = PretrainedModel.Load(SharedData.Fixture("bert"));
        using var dir = new TempDir();
        OnnxExport.Export(model, model.Config.Labels, dir.Path);
        int length = cases.InputIds[0].Length + 3;
        static long[][] Padded(long[][] rows, int length) => rows.Select(r => r.Concat(new long[length - r.Length]).ToArray()).ToArray();

        var dynamicOps = OptimizedOperators(dir.Path, new OnnxScoringOptions());
        var fixedOps = OptimizedOperators(dir.Path, new OnnxScoringOptions { FixedSequenceLength = length });
        using var dynamicScorer = OnnxTextClassifier.Load(dir.Path);
        using var fixedScorer = OnnxTextClassifier.Load(dir.Path, new OnnxScoringOptions { FixedSequenceLength = length });
        var expected = dynamicScorer.Logits(cases.InputIds, cases.AttentionMask, cases.TokenTypeIds);
        var fixedLogits = fixedScorer.Logits(Padded(cases.InputIds, length), Padded(cases.AttentionMask, length),
            cases.TokenTypeIds is null ? null : Padded(cases.TokenTypeIds, length));
        var wrongLength = () => fixedScorer.Logits(cases.InputIds, cases.AttentionMask, cases.TokenTypeIds);

        dynamicOps["SkipLayerNormalization"].Should().Be(0, "with a dynamic sequence axis ONNX Runtime's fuser leaves Add + LayerNormalization alone");
        dynamicOps["LayerNormalization"].Should().BeGreaterThan(0);
        fixedOps["SkipLayerNormalization"].Should().BeGreaterThan(0);
        fixedOps["LayerNormalization"].Should().Be(0, "every LayerNormalization of BERT follows a residual Add and is fused");
        LogitsCases.MaxAbsDifference(fixedLogits, expected).Should().BeLessThan(1e-4, "padding to the fixed length changes no logit");
        wrongLength.Should().Throw<ArgumentException>().WithMessage($"*fixed sequence length of {length}*");
    }
}
