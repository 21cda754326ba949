using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Checkpoints.Pickle;

/// <summary>An element type of a PyTorch storage (<c>torch.FloatStorage</c>, ...), as torch.save names it.</summary>
internal sealed record TorchElementType(string StorageName, ScalarType ScalarType, int Size)
{
    /// <summary>The storage classes a checkpoint may reference, by name under the <c>torch</c> module.</summary>
    public static readonly IReadOnlyDictionary<string, TorchElementType> ByStorageName = new[]
    {
        new TorchElementType("FloatStorage", ScalarType.Float32, 4),
        new TorchElementType("HalfStorage", ScalarType.Float16, 2),
        new TorchElementType("BFloat16Storage", ScalarType.BFloat16, 2),
        new TorchElementType("DoubleStorage", ScalarType.Float64, 8),
        new TorchElementType("LongStorage", ScalarType.Int64, 8),
        new TorchElementType("IntStorage", ScalarType.Int32, 4),
        new TorchElementType("ShortStorage", ScalarType.Int16, 2),
        new TorchElementType("CharStorage", ScalarType.Int8, 1),
        new TorchElementType("ByteStorage", ScalarType.Byte, 1),
        new TorchElementType("BoolStorage", ScalarType.Bool, 1),
        // Untyped storages (PyTorch 1.12+ names) hold bytes; their element count is a byte count.
        new TorchElementType("UntypedStorage", ScalarType.Byte, 1),
        new TorchElementType("_UntypedStorage", ScalarType.Byte, 1),
    }.ToDictionary(t => t.StorageName, StringComparer.Ordinal);
}
