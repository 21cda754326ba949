using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models.Quantization;

/// <summary>
/// How the frozen linear layers of a model's transformer layers are kept in memory (QLoRA's quantized base, or a
/// half-precision checkpoint's own 16 bits): <see cref="Kind"/> the number format, <see cref="DoubleQuantization"/> whether the 4-bit formats' block scales are
/// quantized again. The embeddings, norms, the pooler and the head stay in floating point, as bitsandbytes leaves
/// everything but the transformer's linear layers.
/// </summary>
public sealed record QuantizedBase(BaseQuantization Kind, bool DoubleQuantization = false)
{
    /// <summary>The setting for <paramref name="kind"/>, or null for <see cref="BaseQuantization.None"/>.</summary>
    public static QuantizedBase? For(BaseQuantization kind, bool doubleQuantization) =>
        kind == BaseQuantization.None ? null : new QuantizedBase(kind, doubleQuantization);

    /// <summary>
    /// The 16-bit storage that keeps <paramref name="folder"/>'s weights as its checkpoint stores them:
    /// <see cref="BaseQuantization.BFloat16"/> when every floating-point matrix in it is bf16,
    /// <see cref="BaseQuantization.Float16"/> when every one is fp16, else null (an fp32 checkpoint, or mixed types).
    /// Widening such a weight to fp32 for a product is exact, so a frozen base kept this way computes what the fp32
    /// copy would, in half the memory.
    /// </summary>
    public static QuantizedBase? StoredSixteenBit(Checkpoints.CheckpointFolder folder)
    {
        using var weights = folder.OpenWeights();
        var types = weights.Names.Where(n => weights.Shape(n).Length == 2).Select(weights.StoredType)
            .Where(t => t is ScalarType.Float32 or ScalarType.Float64 or ScalarType.BFloat16 or ScalarType.Float16)
            .Distinct().ToList();
        return types switch
        {
            [ScalarType.BFloat16] => new QuantizedBase(BaseQuantization.BFloat16),
            [ScalarType.Float16] => new QuantizedBase(BaseQuantization.Float16),
            _ => null,
        };
    }

    [ThreadStatic] static QuantizedBase? _building;

    /// <summary>
    /// Runs <paramref name="build"/> (a model's constructor) so that each transformer layer is quantized as soon as it is
    /// built, before the next one is: a model several times larger than memory in fp32 never exists whole in fp32.
    /// </summary>
    internal static T Building<T>(QuantizedBase? quantization, Func<T> build)
    {
        var outer = _building;
        _building = quantization;
        try { return build(); }
        finally { _building = outer; }
    }

    /// <summary>Called by the layer stacks with each layer they build: quantizes its linear layers when a model is built under <see cref="Building{T}"/>.</summary>
    internal static TLayer LayerBuilt<TLayer>(TLayer layer) where TLayer : nn.Module
    {
        _building?.Apply(layer);
        return layer;
    }

    /// <summary>
    /// One line on what the quantization of <paramref name="model"/>'s base holds: the layers, their bytes as kept and
    /// as fp32 would keep them.
    /// </summary>
    public string Summary(nn.Module model)
    {
        var layers = model.named_modules().Select(m => m.module).OfType<LoraLinear>().Where(l => l.IsQuantized).ToList();
        long packed = layers.Sum(l => l.BaseWeightBytes);
        long dense = layers.Sum(l => l.InFeatures * l.OutFeatures * sizeof(float));
        return $"Base weights of {layers.Count} linear layers kept as {Kind}{(DoubleQuantization ? " with double quantization" : "")}: " +
            $"{packed / 1048576.0:N1} MiB instead of {dense / 1048576.0:N1} MiB in fp32 ({packed * 8.0 / Math.Max(1, dense / sizeof(float)):F2} bits per weight).";
    }

    /// <summary>
    /// Quantizes the linear layers of <paramref name="model"/>'s transformer layers that are not quantized yet, as
    /// building under <see cref="Building{T}"/> would have: for a model that needed its full-precision weights first
    /// (LoftQ computes its factors from them).
    /// </summary>
    public void ApplyToLayers(nn.Module model)
    {
        foreach (var (_, child) in model.named_modules())
            if (child is Kernels.ILayerStack) Apply(child);
    }

    /// <summary>Quantizes every linear layer of <paramref name="module"/> that is not quantized yet.</summary>
    internal void Apply(nn.Module module)
    {
        foreach (var (_, child) in module.named_modules())
            if (child is LoraLinear { IsQuantized: false } linear) linear.QuantizeBase(this);
    }
}
