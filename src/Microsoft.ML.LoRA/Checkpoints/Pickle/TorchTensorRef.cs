namespace Microsoft.ML.LoRA.Checkpoints.Pickle;

/// <summary>A storage of a PyTorch checkpoint: the zip entry holding its bytes, element type and element count.</summary>
internal sealed record TorchStorage(string Key, string EntryName, TorchElementType ElementType, long ElementCount);

/// <summary>A tensor rebuilt by <c>torch._utils._rebuild_tensor_v2</c>: a strided view of a storage.</summary>
internal sealed record TorchTensorRef(TorchStorage Storage, long StorageOffset, long[] Shape, long[] Stride)
{
    /// <summary>Number of elements (product of the shape).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Elements of the storage the view spans from its offset: 1 + Σ (size − 1) × stride (0 when empty).</summary>
    public long Span => ElementCount == 0 ? 0 : 1 + Shape.Zip(Stride, (size, stride) => (size - 1) * stride).Sum();
}
