namespace Microsoft.ML.LoRA.Persistence;

/// <summary>
/// A saved model file (model.zip) that cannot be used: not a zip, damaged (an entry whose bytes do not match the
/// zip's CRC-32 or the manifest's SHA-256), an entry larger than allowed, a missing or malformed manifest, an entry
/// with an unexpected name. The message is one line, <c>"{path}, entry {entry}: {problem}"</c>.
/// </summary>
/// <remarks>
/// It derives from <see cref="IOException"/> (as <see cref="Checkpoints.CheckpointFormatException"/> does) because
/// <see cref="InvalidDataException"/> is sealed; the CLI reports it with exit code 4 (invalid input).
/// </remarks>
public sealed class ModelFileException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="path">The model file.</param>
    /// <param name="entry">The entry of the zip at fault, or null when the problem is the file as a whole.</param>
    /// <param name="problem">What is wrong, specifically enough to act on.</param>
    /// <param name="inner">The exception that revealed it, if any.</param>
    public ModelFileException(string path, string? entry, string problem, Exception? inner = null)
        : base(entry is null ? $"{path}: {problem}" : $"{path}, entry {entry}: {problem}", inner)
    {
        Path = path;
        Entry = entry;
    }

    /// <summary>The model file.</summary>
    public string Path { get; }

    /// <summary>The entry of the zip at fault (for example <c>adapter/adapter_model.safetensors</c>), or null.</summary>
    public string? Entry { get; }
}
