using System.Security.Cryptography;

namespace Microsoft.ML.LoRA.Checkpoints;

/// <summary>
/// A Hugging Face model folder: <c>config.json</c>, the weights (<c>model.safetensors</c>, a sharded
/// <c>model.safetensors.index.json</c> set, or <c>pytorch_model.bin</c>) and usually tokenizer files.
/// </summary>
public sealed class CheckpointFolder
{
    /// <summary>Weight file names, in the order they are looked for.</summary>
    public static readonly string[] WeightFileNames =
        { "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json" };

    CheckpointFolder(string directory, TransformerConfig config, string? weightsEntry)
    {
        Directory = directory;
        Config = config;
        WeightsEntry = weightsEntry;
    }

    /// <summary>Full path of the folder.</summary>
    public string Directory { get; }

    /// <summary>The parsed config.json.</summary>
    public TransformerConfig Config { get; }

    /// <summary>The weights file found (single file or index), or null when the folder has none.</summary>
    public string? WeightsEntry { get; }

    /// <summary>Opens a folder; throws naming what is missing.</summary>
    public static CheckpointFolder Open(string directory)
    {
        if (string.IsNullOrWhiteSpace(directory)) throw new ArgumentException("No model folder was given.", nameof(directory));
        var full = Path.GetFullPath(directory);
        if (!System.IO.Directory.Exists(full))
            throw new DirectoryNotFoundException($"Model folder not found: {full}");
        var configPath = Path.Combine(full, "config.json");
        if (!File.Exists(configPath))
            throw new FileNotFoundException($"Model folder {full} has no config.json (a Hugging Face model folder holds config.json and model.safetensors)", configPath);
        var config = TransformerConfig.Load(configPath);
        var weights = WeightFileNames.Select(n => Path.Combine(full, n)).FirstOrDefault(File.Exists);
        return new CheckpointFolder(full, config, weights);
    }

    /// <summary>Opens the weights; throws when the folder has none.</summary>
    public ITensorSource OpenWeights()
    {
        if (WeightsEntry is null)
            throw new FileNotFoundException($"Model folder {Directory} has no weights ({string.Join(", ", WeightFileNames)})");
        var name = Path.GetFileName(WeightsEntry);
        return name switch
        {
            "model.safetensors" => SafeTensorsSource.OpenFile(WeightsEntry),
            "model.safetensors.index.json" => SafeTensorsSource.OpenIndex(WeightsEntry),
            "pytorch_model.bin.index.json" => PyTorchBinSource.OpenIndex(WeightsEntry),
            _ => PyTorchBinSource.Open(WeightsEntry),
        };
    }

    /// <summary>
    /// SHA-256 identifying the weights: over each weight file's name and SHA-256, in name order. A changed byte in any
    /// shard changes it; renaming the folder does not.
    /// </summary>
    public string ComputeWeightsSha256()
    {
        using var source = OpenWeights();
        return HashFiles(source.Files);
    }

    /// <summary>The combined SHA-256 of several files (see <see cref="ComputeWeightsSha256"/>).</summary>
    public static string HashFiles(IEnumerable<string> files)
    {
        using var combined = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in files.OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal))
        {
            combined.AppendData(System.Text.Encoding.UTF8.GetBytes(Path.GetFileName(file) + "\n"));
            combined.AppendData(System.Text.Encoding.ASCII.GetBytes(Sha256OfFile(file) + "\n"));
        }
        return Convert.ToHexStringLower(combined.GetHashAndReset());
    }

    /// <summary>Hex SHA-256 of one file.</summary>
    public static string Sha256OfFile(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
