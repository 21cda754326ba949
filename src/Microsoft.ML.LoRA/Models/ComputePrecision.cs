using System.Text.Json.Serialization;

namespace Microsoft.ML.LoRA.Models;

/// <summary>The number type the linear layers multiply in (see <see cref="MixedPrecision"/> and <see cref="Int8Scoring"/>).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ComputePrecision>))]
public enum ComputePrecision
{
    /// <summary>fp32 throughout: results match PyTorch's fp32 to rounding. The default.</summary>
    Float32,
    /// <summary>
    /// bfloat16 matrix products with fp32 accumulation, everything else fp32 (torch.autocast on the CPU). Several
    /// times faster where the CPU multiplies bf16 natively (AVX-512 BF16, AMX); slower where it does not.
    /// </summary>
    BFloat16,
    /// <summary>
    /// <see cref="BFloat16"/> where this CPU multiplies bf16 natively (<see cref="MixedPrecision.IsAccelerated"/>),
    /// <see cref="Float32"/> elsewhere; decided on each machine that runs the model.
    /// </summary>
    Auto,
    /// <summary>
    /// Scoring only: training runs in fp32 (as <see cref="Float32"/>), and the fitted or loaded model multiplies int8
    /// weights by int8-rounded activations in every linear layer, PyTorch's dynamic quantization
    /// (<see cref="Int8Scoring"/>). Faster scoring of MiniLM- and DistilBERT-size models on an AVX2 CPU (no gain on
    /// very small ones), at a small accuracy cost
    /// (measured: docs/benchmarks.md, "Why the kernels are built as they are"). Where libtorch lacks the FBGEMM
    /// kernels (non-x86 builds) the model scores in fp32.
    /// </summary>
    Int8,
}
