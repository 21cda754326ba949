using System.Text.RegularExpressions;

namespace Microsoft.ML.LoRA;

/// <summary>
/// A private folder in the temp folder, <c>lora-{pid}-{host}-{guid}</c> (see <see cref="ProcessOwnedNames"/>), deleted on
/// dispose. A process killed before disposing cannot delete its own; creating one therefore first deletes the scratch
/// folders that a process of this machine left and that is no longer running (never a live process's).
/// </summary>
internal sealed partial class ScratchFolder : IDisposable
{
    /// <summary>Full path of the folder.</summary>
    public string Path { get; }

    public ScratchFolder()
    {
        var temp = System.IO.Path.GetTempPath();
        DeleteStale(temp);
        Path = System.IO.Path.Combine(temp, $"lora-{ProcessOwnedNames.Owner}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path);
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>Deletes the scratch folders in <paramref name="temp"/> left by ended processes of this machine; returns how many.</summary>
    internal static int DeleteStale(string temp)
    {
        if (!Directory.Exists(temp)) return 0;
        return ProcessOwnedNames.DeleteStale(
            Directory.EnumerateDirectories(temp, "lora-*"),
            dir => FolderName().Match(System.IO.Path.GetFileName(dir)) is { Success: true } m ? (m.Groups["pid"].Value, m.Groups["host"].Value) : null,
            dir => Directory.Delete(dir, recursive: true));
    }

    [GeneratedRegex(@"^lora-(?<pid>[0-9]+)-(?<host>[0-9a-f]{8})-[0-9a-f]{32}$", RegexOptions.CultureInvariant)]
    private static partial Regex FolderName();
}
