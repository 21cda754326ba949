using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// int8 products for scoring (<see cref="ComputePrecision.Int8"/>): every <see cref="LoraLinear"/> rounds its eval-mode
/// matrix (weight plus adapter update) to int8 once, and in eval mode without autograd multiplies it by each batch's
/// activations rounded to uint8, as PyTorch's torch.ao.quantization.quantize_dynamic does for nn.Linear on the CPU.
/// </summary>
/// <remarks>
/// The rounded copy is a snapshot of the weights: training mode, merging and adapter changes drop it, so a model
/// switched back to training never trains against it. Attention, LayerNorm, softmax and the embeddings stay fp32.
/// </remarks>
public static class Int8Scoring
{
    /// <summary>True when this libtorch has the FBGEMM kernels int8 products need (x86-64 CPU builds).</summary>
    public static bool IsAvailable => Int8Weight.IsAvailable;

    /// <summary>Whether <paramref name="precision"/> means int8 products when scoring on this machine.</summary>
    public static bool UsesInt8(this ComputePrecision precision) => precision == ComputePrecision.Int8 && IsAvailable;

    /// <summary>Rounds every linear layer of <paramref name="model"/> to int8 for scoring (see <see cref="LoraLinear.QuantizeToInt8"/>).</summary>
    public static void QuantizeToInt8(this nn.Module model)
    {
        foreach (var (_, module) in model.named_modules())
            if (module is LoraLinear linear) linear.QuantizeToInt8();
    }

    /// <summary>Drops every linear layer's int8 copy: the model scores in fp32 (or its <see cref="LoraLinear.ComputeDtype"/>) again.</summary>
    public static void DropInt8(this nn.Module model)
    {
        foreach (var (_, module) in model.named_modules())
            if (module is LoraLinear linear) linear.DropInt8();
    }

    /// <summary>
    /// Sets <paramref name="model"/> up to score as <paramref name="precision"/> says on this machine: bf16 products
    /// (<see cref="MixedPrecision"/>), or the int8 copies made now from the current weights.
    /// </summary>
    public static void UseForScoring(this nn.Module model, ComputePrecision precision)
    {
        model.Use(precision);
        if (precision.UsesInt8()) model.QuantizeToInt8();
        else model.DropInt8();
    }
}
