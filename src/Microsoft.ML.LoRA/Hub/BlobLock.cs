using System.Collections.Concurrent;

namespace Microsoft.ML.LoRA.Hub;

/// <summary>
/// Exclusive right to write one blob of the cache: an in-process semaphore per blob, then an exclusive lock on
/// <c>.locks/.../{etag}.lock</c> (on Unix .NET takes it with <c>flock</c>, as Python's <c>filelock</c> does, so other
/// processes, Python ones included, wait too).
/// </summary>
internal sealed class BlobLock : IDisposable
{
    static readonly ConcurrentDictionary<string, SemaphoreSlim> Semaphores = new(StringComparer.Ordinal);

    readonly SemaphoreSlim _semaphore;
    readonly FileStream _file;

    BlobLock(SemaphoreSlim semaphore, FileStream file)
    {
        _semaphore = semaphore;
        _file = file;
    }

    /// <summary>Waits (at most <paramref name="timeout"/>) for the lock of a blob.</summary>
    public static async Task<BlobLock> AcquireAsync(string blobPath, string lockPath, TimeSpan timeout, CancellationToken ct)
    {
        var semaphore = Semaphores.GetOrAdd(Path.GetFullPath(blobPath), _ => new SemaphoreSlim(1, 1));
        var deadline = DateTime.UtcNow + timeout;
        if (!await semaphore.WaitAsync(timeout, ct).ConfigureAwait(false))
            throw new HubException($"Timed out after {timeout} waiting for another download of {blobPath} in this process.");
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
            while (true)
            {
                try
                {
                    var file = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                    return new BlobLock(semaphore, file);
                }
                catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException)
                {
                    if (DateTime.UtcNow >= deadline)
                        throw new HubException($"Timed out after {timeout} waiting for the lock {lockPath}, held by another process downloading the same file ({e.Message}).", innerException: e);
                    await Task.Delay(TimeSpan.FromMilliseconds(200), ct).ConfigureAwait(false);
                }
            }
        }
        catch
        {
            semaphore.Release();
            throw;
        }
    }

    public void Dispose()
    {
        _file.Dispose();
        _semaphore.Release();
    }
}
