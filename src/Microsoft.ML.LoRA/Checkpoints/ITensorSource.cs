using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Checkpoints;

/// <summary>Named tensors stored somewhere (one safetensors file, a sharded set, a PyTorch archive), read on demand.</summary>
public interface ITensorSource : IDisposable
{
    /// <summary>Every tensor name the source holds.</summary>
    IReadOnlyCollection<string> Names { get; }

    /// <summary>The stored shape of a tensor.</summary>
    long[] Shape(string name);

    /// <summary>The element type a tensor is stored with (<see cref="ReadFloat32"/> converts from it).</summary>
    ScalarType StoredType(string name);

    /// <summary>Reads a tensor as float32 on the CPU; the caller disposes it.</summary>
    Tensor ReadFloat32(string name);

    /// <summary>The files the tensors come from (for hashing).</summary>
    IReadOnlyList<string> Files { get; }
}
