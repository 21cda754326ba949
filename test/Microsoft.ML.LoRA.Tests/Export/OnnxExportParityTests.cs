using Microsoft.ML.LoRA.Diagnostics;
using Microsoft.ML.LoRA.Export;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Onnx;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.OnnxRuntime;

namespace Microsoft.ML.LoRA.Tests.Export;

/// <summary>
/// The exported graph of each fixture family (DeBERTa's and the LLaMA family's included), its PEFT adapter merged, gives ONNX Runtime logits equal to our
/// TorchSharp logits (and to the fixture's reference) within 1e-4, with every graph optimization on and with none, at
/// opsets 17 and 21; fp16 and int8 exports load and stay finite.
/// </summary>
public class OnnxExportParityTests
{
    public static IEnumerable<object[]> Families => SharedData.Families.Select(f => new object[] { f });

    /// <summary>
    /// The four fixture families of ../shared, DeBERTa v2 (log buckets, absolute positions) and v3, and the LLaMA
    /// family's three (llama with llama3 rotary scaling, qwen2, mistral with a sliding window).
    /// </summary>
    public static IEnumerable<object[]> Fixtures => SharedData.Families.Select(f => new object[] { SharedData.Fixture(f) })
        .Concat(new[] { "v2", "v3" }.Select(v => new object[] { Path.Combine(SharedData.RepoRoot, "test", "Microsoft.ML.LoRA.Tests", "Fixtures", "deberta-v2", v) }))
        .Concat(LlamaFixtures.Variants.Select(v => new object[] { LlamaFixtures.Folder(v) }));

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Onnx_runtime_logits_match_torchsharp_with_the_adapter_merged(string fixture)
    {
        var cases = LogitsCases.Load(Path.Combine(fixture, "cases.json"));
        using var model = PretrainedModel.Load(fixture);
        PeftAdapter.Load(model, Path.Combine(fixture, "adapter")).AdaptedModules.Should().NotBeEmpty();
        var torchLogits = cases.Run(model);
        using var dir = new TempDir();

        var result = OnnxExport.Export(model, model.Config.Labels, dir.Path);

        result.Inputs.Should().Equal(model.Config.TakesTokenTypes
            ? new[] { "input_ids", "attention_mask", "token_type_ids" } : new[] { "input_ids", "attention_mask" });
        foreach (var level in new[] { GraphOptimizationLevel.ORT_ENABLE_ALL, GraphOptimizationLevel.ORT_DISABLE_ALL })
        {
            using var scorer = OnnxTextClassifier.Load(dir.Path, new OnnxScoringOptions { OptimizationLevel = level });
            var onnxLogits = scorer.Logits(cases.InputIds, cases.AttentionMask, cases.TokenTypeIds);
            LogitsCases.MaxAbsDifference(onnxLogits, torchLogits).Should().BeLessThan(1e-4, $"ONNX Runtime ({level}) against TorchSharp");
            LogitsCases.MaxAbsDifference(onnxLogits, cases.LogitsWithAdapter!).Should().BeLessThan(cases.Tolerance, "against the reference");
            LogitsCases.MaxAbsDifference(onnxLogits, cases.Logits!).Should().BeGreaterThan(cases.Tolerance, "the merged adapter changes the output");
        }
        // Opset 21: GELU as the Gelu operator, ReduceMean's axes as an input.
        var opset21 = Path.Combine(dir.Path, "opset21");
        OnnxExport.Export(model, model.Config.Labels, opset21, new OnnxExportOptions { Opset = 21 });
        using var latest = OnnxTextClassifier.Load(opset21);
        latest.Description.Opset.Should().Be(21);
        LogitsCases.MaxAbsDifference(latest.Logits(cases.InputIds, cases.AttentionMask, cases.TokenTypeIds), torchLogits).Should().BeLessThan(1e-4, "opset 21");
    }

    [Theory]
    [InlineData("bert")]
    [InlineData("gpt2")]
    public void Weights_stored_as_external_data_beside_the_graph_score_exactly_as_inside_it(string family)
    {
        var fixture = SharedData.Fixture(family);
        var cases = LogitsCases.Load(Path.Combine(fixture, "cases.json"));
        using var model = PretrainedModel.Load(fixture);
        PeftAdapter.Load(model, Path.Combine(fixture, "adapter"));
        using var dir = new TempDir();
        var inside = OnnxExport.Export(model, model.Config.Labels, dir.File("inside"));

        var outside = OnnxExport.Export(model, model.Config.Labels, dir.File("outside"), new OnnxExportOptions { ExternalData = true });

        inside.ExternalDataPath.Should().BeNull("small weights stay in model.onnx by default");
        outside.ExternalDataPath.Should().Be(Path.Combine(dir.File("outside"), OnnxExport.ExternalDataFileName));
        new FileInfo(outside.ModelPath).Length.Should().BeLessThan(new FileInfo(inside.ModelPath).Length / 4, "the weights moved out");
        outside.ModelBytes.Should().BeGreaterThan(new FileInfo(outside.ModelPath).Length, "the size counts the data file");
        using (var fromInside = OnnxTextClassifier.Load(dir.File("inside")))
        using (var fromOutside = OnnxTextClassifier.Load(dir.File("outside")))
            fromOutside.Logits(cases.InputIds, cases.AttentionMask, cases.TokenTypeIds).SelectMany(r => r).Should()
                .Equal(fromInside.Logits(cases.InputIds, cases.AttentionMask, cases.TokenTypeIds).SelectMany(r => r), "the same weights, read from the data file");

        var again = OnnxExport.Export(model, model.Config.Labels, dir.File("outside"), new OnnxExportOptions { ExternalData = false });

        again.ExternalDataPath.Should().BeNull();
        File.Exists(Path.Combine(dir.File("outside"), OnnxExport.ExternalDataFileName)).Should().BeFalse("an earlier export's data file is not left beside a model that does not use it");
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Fp16_and_int8_exports_load_with_every_optimization_and_fp16_stays_near_fp32(string fixture)
    {
        var cases = LogitsCases.Load(Path.Combine(fixture, "cases.json"));
        using var model = PretrainedModel.Load(fixture);
        PeftAdapter.Load(model, Path.Combine(fixture, "adapter"));
        var torchLogits = cases.Run(model);
        using var dir = new TempDir();

        foreach (var precision in new[] { OnnxPrecision.Float16, OnnxPrecision.Int8 })
        {
            var folder = Path.Combine(dir.Path, precision.ToString());
            OnnxExport.Export(model, model.Config.Labels, folder, new OnnxExportOptions { Precision = precision, Opset = 21 });
            using var scorer = OnnxTextClassifier.Load(folder);   // every graph optimization (the default)
            var logits = scorer.Logits(cases.InputIds, cases.AttentionMask, cases.TokenTypeIds);
            var difference = LogitsCases.MaxAbsDifference(logits, torchLogits);
            logits.SelectMany(r => r).Should().OnlyContain(v => float.IsFinite(v));
            difference.Should().BeGreaterThan(0, $"{precision} is not fp32");
            // fp16 rounds the weights only; int8 rounds weights and activations of these tiny random models coarsely,
            // so its accuracy is measured on a trained model instead (OnnxPrecisionTests).
            double scale = Math.Max(1, torchLogits.SelectMany(r => r).Max(v => Math.Abs(v)));   // the fixtures' logits reach 0.05 to 6.7
            if (precision == OnnxPrecision.Float16) difference.Should().BeLessThan(0.01 * scale);
        }
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Rows_score_alike_whatever_the_batch_and_its_padding(string family)
    {
        var cases = LogitsCases.Load(Path.Combine(SharedData.Fixture(family), "cases.json"));
        using var model = PretrainedModel.Load(SharedData.Fixture(family));
        using var dir = new TempDir();
        OnnxExport.Export(model, model.Config.Labels, dir.Path);
        using var scorer = OnnxTextClassifier.Load(dir.Path);
        var batched = scorer.Logits(cases.InputIds, cases.AttentionMask, cases.TokenTypeIds);

        for (int i = 0; i < cases.InputIds.Length; i++)
        {
            int length = (int)cases.AttentionMask[i].Sum();
            var alone = scorer.Logits(new[] { cases.InputIds[i][..length] }, new[] { cases.AttentionMask[i][..length] },
                cases.TokenTypeIds is null ? null : new[] { cases.TokenTypeIds[i][..length] });
            LogitsCases.MaxAbsDifference(alone, new[] { batched[i] }).Should().BeLessThan(1e-5, $"row {i} alone, unpadded");
        }
    }

    [Fact]
    public void The_graph_uses_standard_operators_only_and_layer_normalization()
    {
        using var model = PretrainedModel.Load(SharedData.Fixture("bert"));
        using var dir = new TempDir();
        OnnxExport.Export(model, model.Config.Labels, dir.Path);
        var bytes = File.ReadAllBytes(Path.Combine(dir.Path, "model.onnx"));
        var text = System.Text.Encoding.ASCII.GetString(bytes);

        text.Should().Contain("LayerNormalization").And.Contain("Softmax").And.Contain("Erf").And.NotContain("com.microsoft");
        using var session = new InferenceSession(bytes);
        session.InputMetadata.Keys.Should().Equal("input_ids", "attention_mask", "token_type_ids");
        session.InputMetadata["input_ids"].Dimensions.Should().Equal(-1, -1);
        session.OutputMetadata["logits"].Dimensions.Should().Equal(-1, 3);
        session.ModelMetadata.CustomMetadataMap["family"].Should().Be("bert");
    }

    /// <summary>The operators of the graph ONNX Runtime runs after its optimizations (ORT_ENABLE_ALL), by name.</summary>
    static string Optimized(string folder)
    {
        var path = Path.Combine(folder, "optimized.onnx");
        using (var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, OptimizedModelFilePath = path })
        using (new InferenceSession(Path.Combine(folder, "model.onnx"), options)) { }
        return System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(path));
    }

    static int Count(string text, string op) => System.Text.RegularExpressions.Regex.Matches(text, $@"\b{op}\b").Count;

    [Fact]
    public void Onnx_runtime_fuses_gelu_the_attention_scale_and_the_int8_products_and_folds_the_fp16_casts()
    {
        using var model = PretrainedModel.Load(SharedData.Fixture("bert"));
        using var dir = new TempDir();
        OnnxExport.Export(model, model.Config.Labels, dir.File("fp32"));
        OnnxExport.Export(model, model.Config.Labels, dir.File("int8"), new OnnxExportOptions { Precision = OnnxPrecision.Int8 });
        OnnxExport.Export(model, model.Config.Labels, dir.File("fp16"), new OnnxExportOptions { Precision = OnnxPrecision.Float16 });

        var fp32 = Optimized(dir.File("fp32"));
        var int8 = Optimized(dir.File("int8"));
        var fp16 = Optimized(dir.File("fp16"));

        Count(fp16, "Cast").Should().Be(Count(fp32, "Cast"), "the Casts that widen fp16 weights are folded when the model loads");

        Count(fp32, "Erf").Should().Be(0, "the erf GELU is fused");
        (Count(fp32, "Gelu") + Count(fp32, "BiasGelu")).Should().BeGreaterThan(0);
        Count(fp32, "FusedMatMul").Should().BeGreaterThan(0, "the attention scale is folded into the score product");
        Count(int8, "MatMulInteger").Should().Be(0, "every quantized product is fused");
        (Count(int8, "DynamicQuantizeMatMul") + Count(int8, "MatMulIntegerToFloat")).Should().BeGreaterThan(0);
    }
}
