using Microsoft.ML.LoRA.Cli.Options;
using Microsoft.ML.LoRA.Models;

namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary>The words of --precision (train, sweep, and predict/evaluate on a saved model) and what they mean in the library.</summary>
public class TrainingOptionSetTests
{
    [Theory]
    [InlineData("fp32", ComputePrecision.Float32)]
    [InlineData("bf16", ComputePrecision.BFloat16)]
    [InlineData("auto", ComputePrecision.Auto)]
    [InlineData("int8", ComputePrecision.Int8)]
    public void Each_precision_word_means_its_library_value(string word, ComputePrecision expected) =>
        TrainingOptionSet.ParsePrecision(word).Should().Be(expected);
}
