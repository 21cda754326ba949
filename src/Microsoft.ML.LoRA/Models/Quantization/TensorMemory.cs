using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models.Quantization;

/// <summary>The native memory behind a contiguous CPU tensor, for kernels that read or fill it in place.</summary>
internal static class TensorMemory
{
    /// <summary>
    /// The address of <paramref name="tensor"/>'s first element. It stays valid while the tensor lives; the tensor
    /// must be contiguous, on the CPU and not empty. Taken through a one-element view, so that tensors of more than
    /// 2 GB (beyond what <see cref="Tensor.bytes"/> spans) have an address too.
    /// </summary>
    public static unsafe byte* Address(Tensor tensor)
    {
        if (tensor.device_type != DeviceType.CPU) throw new ArgumentException($"the tensor is on {tensor.device}, not the CPU", nameof(tensor));
        if (!tensor.is_contiguous()) throw new ArgumentException("the tensor is not contiguous", nameof(tensor));
        if (tensor.numel() == 0) throw new ArgumentException("the tensor is empty", nameof(tensor));
        using var flat = tensor.view(-1);
        using var first = flat.narrow(0, 0, 1);
        fixed (byte* address = first.bytes) return address;
    }
}
