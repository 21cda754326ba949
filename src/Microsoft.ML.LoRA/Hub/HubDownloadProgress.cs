namespace Microsoft.ML.LoRA.Hub;

/// <summary>Progress of one file being downloaded from the Hub.</summary>
/// <param name="File">The file's name in the repository, e.g. <c>model.safetensors</c>.</param>
/// <param name="BytesDone">Bytes of the file now on disk (a resumed download starts above zero).</param>
/// <param name="TotalBytes">The file's size, when the Hub told it.</param>
public readonly record struct HubDownloadProgress(string File, long BytesDone, long? TotalBytes);
