using System.IO.Compression;
using System.Text;

namespace Microsoft.ML.LoRA.Data;

/// <summary>Opens a data file for reading, decompressing it on the fly when its name ends in <c>.gz</c>.</summary>
internal static class DataFileStreams
{
    /// <summary>True when the file name ends in <c>.gz</c>.</summary>
    public static bool IsGzip(string path) => path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase);

    /// <summary>The file name without a trailing <c>.gz</c> (so <c>train.csv.gz</c> has the extension <c>.csv</c>).</summary>
    public static string NameWithoutGzip(string path)
    {
        var name = Path.GetFileName(path);
        return IsGzip(name) ? name[..^3] : name;
    }

    /// <summary>A read-only stream of the file's (decompressed) bytes.</summary>
    public static Stream Open(string path)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        return IsGzip(path) ? new GZipStream(file, CompressionMode.Decompress, leaveOpen: false) : file;
    }

    /// <summary>A UTF-8 reader over the file's (decompressed) text; a byte-order mark is honoured and skipped.</summary>
    public static StreamReader OpenText(string path) =>
        new(Open(path), new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);
}
