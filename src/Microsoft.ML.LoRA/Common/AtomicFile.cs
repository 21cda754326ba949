using System.Text.RegularExpressions;

namespace Microsoft.ML.LoRA;

/// <summary>
/// Writes a file so that readers see either the old content or the complete new content, never a partial file:
/// the data goes to a temporary file in the same folder, is flushed to disk, then renamed over the target.
/// </summary>
/// <remarks>
/// The temporary file is <c>.{name}.{pid}-{host}.{guid}.tmp</c> (see <see cref="ProcessOwnedNames"/>). A process killed
/// mid-write cannot delete its own; each write therefore first deletes the temporary files in its folder that a
/// process of this machine left and that is no longer running (never those of a live process, nor those of another
/// machine, nor names of another shape).
/// </remarks>
public static partial class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/>; on any exception the old file is left as it was.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var folder = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(folder);
        DeleteStaleTemporaryFiles(folder);
        var temp = Path.Combine(folder, $".{Path.GetFileName(full)}.{ProcessOwnedNames.Owner}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>Writes text atomically (UTF-8, no byte-order mark).</summary>
    public static void WriteAllText(string path, string text) =>
        Write(path, s => { using var w = new StreamWriter(s, new System.Text.UTF8Encoding(false), leaveOpen: true); w.Write(text); });

    /// <summary>Deletes the temporary files in <paramref name="folder"/> left by ended processes of this machine; returns how many.</summary>
    internal static int DeleteStaleTemporaryFiles(string folder) =>
        ProcessOwnedNames.DeleteStale(
            Directory.EnumerateFiles(folder, ".*.tmp"),
            file => TemporaryName().Match(Path.GetFileName(file)) is { Success: true } m ? (m.Groups["pid"].Value, m.Groups["host"].Value) : null,
            File.Delete);

    [GeneratedRegex(@"^\..+\.(?<pid>[0-9]+)-(?<host>[0-9a-f]{8})\.[0-9a-f]{32}\.tmp$", RegexOptions.CultureInvariant)]
    private static partial Regex TemporaryName();
}
