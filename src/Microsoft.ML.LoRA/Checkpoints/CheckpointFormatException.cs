namespace Microsoft.ML.LoRA.Checkpoints;

/// <summary>A checkpoint, adapter or config file is malformed; the message names the file and what is wrong.</summary>
public sealed class CheckpointFormatException : IOException
{
    /// <summary>The file that could not be read.</summary>
    public string FilePath { get; }

    public CheckpointFormatException(string filePath, string problem)
        : base($"{filePath}: {problem}")
    {
        FilePath = filePath;
    }
}
