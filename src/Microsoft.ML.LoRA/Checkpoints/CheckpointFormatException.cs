namespace Microsoft.ML.LoRA.Checkpoints;

/// <summary>A checkpoint, adapter or config file is malformed; the message names the file and what is wrong.</summary>
public sealed class CheckpointFormatException : IOException
{
    /// <summary>The file that could not be read.</summary>
    public string FilePath { get; }

    /// <summary>Creates the exception; its message is <c>"{filePath}: {problem}"</c>.</summary>
    /// <param name="filePath">The file that could not be read.</param>
    /// <param name="problem">What is wrong with it, specifically enough to fix it.</param>
    public CheckpointFormatException(string filePath, string problem)
        : base($"{filePath}: {problem}")
    {
        FilePath = filePath;
    }
}
