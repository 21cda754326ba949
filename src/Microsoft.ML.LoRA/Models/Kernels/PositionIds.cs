using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models.Kernels;

/// <summary>Position ids 0 .. count-1 as an int64 [1, count] row, the arange every family's forward needs.</summary>
internal static class PositionIds
{
    public static Tensor Row(long count, Device device)
    {
        using Scalar stop = count;   // an explicit Scalar, kept alive for the native call (see Scalars)
        using var positions = torch.arange(stop, dtype: ScalarType.Int64, device: device);
        return positions.unsqueeze(0);
    }
}
