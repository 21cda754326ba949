using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tests.Checkpoints;

/// <summary>Exact tensor comparisons for checkpoint tests.</summary>
public static class TensorAssert
{
    /// <summary>Same element type, same shape, every element equal.</summary>
    public static void Identical(Tensor actual, Tensor expected, string name)
    {
        actual.dtype.Should().Be(expected.dtype, name);
        actual.shape.Should().Equal(expected.shape, name);
        using var same = actual.eq(expected);
        using var all = same.all();
        all.item<bool>().Should().BeTrue($"every element of '{name}' should be equal");
    }
}
