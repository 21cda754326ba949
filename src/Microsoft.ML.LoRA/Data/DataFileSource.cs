using Microsoft.ML.Data;

namespace Microsoft.ML.LoRA.Data;

/// <summary>
/// One data file as ML.NET's <see cref="IMultiStreamSource"/>, decompressed on the fly when it ends in <c>.gz</c>, so
/// <see cref="TextLoader"/> streams gzipped files too. Every cursor opens the file afresh.
/// </summary>
internal sealed class DataFileSource : IMultiStreamSource
{
    readonly string _path;

    public DataFileSource(string path) => _path = path;

    public int Count => 1;

    public string? GetPathOrNull(int index) => index == 0 ? _path : throw new ArgumentOutOfRangeException(nameof(index));

    public Stream Open(int index) =>
        index == 0 ? DataFileStreams.Open(_path) : throw new ArgumentOutOfRangeException(nameof(index));

    public TextReader OpenTextReader(int index) =>
        index == 0 ? DataFileStreams.OpenText(_path) : throw new ArgumentOutOfRangeException(nameof(index));
}
