using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Checkpoints;

/// <summary>The committed assets of test/Microsoft.ML.LoRA.Tests/Assets/Checkpoints (made by make_assets.py).</summary>
public static class CheckpointAssets
{
    public static string Root => Path.Combine(SharedData.RepoRoot, "test", "Microsoft.ML.LoRA.Tests", "Assets", "Checkpoints");

    public static string File(string name) => Path.Combine(Root, name);

    /// <summary>A tiny random BERT classifier folder holding config.json and pytorch_model.bin only.</summary>
    public static string TinyBertBinFolder => File("tiny-bert-bin");

    /// <summary>The same weights as two .bin shards and pytorch_model.bin.index.json.</summary>
    public static string TinyBertShardedBinFolder => File("tiny-bert-bin-sharded");

    /// <summary>The same weights as safetensors.</summary>
    public static string TinyBertSafetensors => File("tiny-bert.safetensors");

    /// <summary>float16, bfloat16, float64, integer, bool, scalar, empty, transposed and shared-storage tensors.</summary>
    public static string DTypesBin => File("dtypes.bin");

    /// <summary>The same tensors as <see cref="DTypesBin"/>, written as safetensors by make_assets.py.</summary>
    public static string DTypesSafetensors => File("dtypes.safetensors");

    /// <summary><see cref="DTypesBin"/> with byteorder "big" and byte-swapped storages.</summary>
    public static string DTypesBigEndianBin => File("dtypes-bigendian.bin");

    /// <summary>A checkpoint in PyTorch's legacy (pre-1.6) format.</summary>
    public static string LegacyBin => File("legacy.bin");

    /// <summary>A torch-layout zip whose pickle calls os.system.</summary>
    public static string MaliciousOsSystemBin => File("malicious-os-system.bin");

    /// <summary>The file the malicious pickle's command would create if anything ran it.</summary>
    public const string PwnedMarker = "/tmp/microsoft-ml-lora-pwned";
}
