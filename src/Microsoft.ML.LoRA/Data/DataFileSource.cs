using Microsoft.ML.Data;

namespace Microsoft.ML.LoRA.Data;

/// <summary>
/// One data file as ML.NET's <see cref="IMultiStreamSource"/>, decompressed on the fly when it ends in <c>.gz</c>, so
/// <see cref="TextLoader"/> streams gzipped files too. Every cursor opens the file afresh. Its text reader keeps
/// TextLoader from taking rows that start with <c>//</c> or <c>#</c> for comments (<see cref="CommentSafeLineReader"/>).
/// </summary>
internal sealed class DataFileSource : IMultiStreamSource
{
    readonly string _path;
    readonly char _separator;
    readonly bool _quoting;

    public DataFileSource(string path, char separator, bool quoting)
    {
        _path = path;
        _separator = separator;
        _quoting = quoting;
    }

    public int Count => 1;

    public string? GetPathOrNull(int index) => index == 0 ? _path : throw new ArgumentOutOfRangeException(nameof(index));

    public Stream Open(int index) =>
        index == 0 ? DataFileStreams.Open(_path) : throw new ArgumentOutOfRangeException(nameof(index));

    public TextReader OpenTextReader(int index) =>
        index == 0 ? new CommentSafeLineReader(DataFileStreams.OpenText(_path), _separator, _quoting) : throw new ArgumentOutOfRangeException(nameof(index));
}
