using Microsoft.ML.LoRA.Diagnostics;
using Microsoft.ML.LoRA.Onnx;
using Microsoft.ML.LoRA.Tests.Support;
using Xunit.Abstractions;

namespace Microsoft.ML.LoRA.Tests.Export;

/// <summary>
/// int8 export (dynamic quantization of the linear layers' weights) and fp16 export (float16 weights) of a classifier
/// fitted on SMS spam: smaller model.onnx files whose predictions agree with fp32 on at least 99% of test rows, while
/// their logits differ.
/// </summary>
public class OnnxPrecisionTests(SpamClassifierExport export, ITestOutputHelper output) : IClassFixture<SpamClassifierExport>
{
    static int ArgMax(float[] row) => Array.IndexOf(row, row.Max());

    [Fact]
    public void Int8_predictions_agree_with_fp32_on_at_least_99_percent_of_test_rows()
    {
        using var exact = OnnxTextClassifier.Load(export.Fp32Folder);
        using var quantized = OnnxTextClassifier.Load(export.Int8Folder);
        var rows = SpamClassifierExport.TestRows;
        var texts = rows.Select(r => r.Text).ToArray();

        var a = exact.Logits(texts);
        var b = quantized.Logits(texts);

        int agree = a.Zip(b).Count(p => ArgMax(p.First) == ArgMax(p.Second));
        double accuracy32 = rows.Where((r, i) => exact.Labels[ArgMax(a[i])] == r.Label).Count() / (double)rows.Count;
        double accuracy8 = rows.Where((r, i) => exact.Labels[ArgMax(b[i])] == r.Label).Count() / (double)rows.Count;
        output.WriteLine($"{agree} of {rows.Count} predictions agree; accuracy fp32 {accuracy32:P2}, int8 {accuracy8:P2}; " +
                         $"largest logit difference {LogitsCases.MaxAbsDifference(a, b):0.0000}");
        quantized.Description.Precision.Should().Be("int8");
        ((double)agree / rows.Count).Should().BeGreaterThanOrEqualTo(0.99);
        accuracy32.Should().BeGreaterThan(0.9, "the fitted model is a real spam classifier, so agreement means something");
        LogitsCases.MaxAbsDifference(a, b).Should().BeGreaterThan(1e-4, "int8 is not fp32");
        new FileInfo(Path.Combine(export.Int8Folder, "model.onnx")).Length.Should()
            .BeLessThan(new FileInfo(Path.Combine(export.Fp32Folder, "model.onnx")).Length);
    }

    [Fact]
    public void Fp16_predictions_agree_with_fp32_on_at_least_99_percent_of_test_rows_in_about_half_the_file()
    {
        using var exact = OnnxTextClassifier.Load(export.Fp32Folder);
        using var half = OnnxTextClassifier.Load(export.Fp16Folder);
        var texts = SpamClassifierExport.TestRows.Select(r => r.Text).ToArray();

        var a = exact.Logits(texts);
        var b = half.Logits(texts);

        int agree = a.Zip(b).Count(p => ArgMax(p.First) == ArgMax(p.Second));
        double difference = LogitsCases.MaxAbsDifference(a, b);
        long fp32Bytes = new FileInfo(Path.Combine(export.Fp32Folder, "model.onnx")).Length, fp16Bytes = new FileInfo(Path.Combine(export.Fp16Folder, "model.onnx")).Length;
        output.WriteLine($"fp16: {agree} of {texts.Length} predictions agree; largest logit difference {difference:0.000000}; {fp16Bytes} bytes against {fp32Bytes}");
        half.Description.Precision.Should().Be("fp16");
        ((double)agree / texts.Length).Should().BeGreaterThanOrEqualTo(0.99);
        difference.Should().BeGreaterThan(0, "fp16 weights are not fp32").And.BeLessThan(0.05);
        ((double)fp16Bytes / fp32Bytes).Should().BeInRange(0.45, 0.55);
    }

    [Fact]
    public void The_int8_graph_uses_dynamic_quantization_operators()
    {
        var text = System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(Path.Combine(export.Int8Folder, "model.onnx")));

        text.Should().Contain("DynamicQuantizeLinear").And.Contain("MatMulInteger");
    }
}
