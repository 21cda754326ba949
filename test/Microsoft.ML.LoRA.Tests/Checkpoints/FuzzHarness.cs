using System.Diagnostics;
using Microsoft.ML.LoRA.Checkpoints;
using Xunit.Abstractions;

namespace Microsoft.ML.LoRA.Tests.Checkpoints;

/// <summary>
/// Runs fuzz cases against a reader: each case's bytes are written to one file and read completely. A case may
/// succeed or end in a <see cref="CheckpointFormatException"/>; any other exception is a failure. It also records
/// the slowest case and the most managed memory one case allocated, and checks no tensor read is larger than the
/// file allows.
/// </summary>
public sealed class FuzzHarness(string path, ITestOutputHelper output)
{
    readonly Dictionary<string, (int Succeeded, int Rejected)> _byKind = new(StringComparer.Ordinal);
    readonly Dictionary<string, int> _messages = new(StringComparer.Ordinal);
    readonly Stopwatch _total = new();

    public int Cases { get; private set; }
    public int Succeeded { get; private set; }
    public int Rejected { get; private set; }
    public List<string> Failures { get; } = new();
    public long MaxManagedBytesPerCase { get; private set; }
    public TimeSpan SlowestCase { get; private set; }
    public TimeSpan Elapsed => _total.Elapsed;

    /// <summary>
    /// Runs one case. <paramref name="readAll"/> opens the file, reads every tensor and returns the largest tensor's
    /// byte size; it must not exceed <paramref name="maxTensorBytesPerFileByte"/> × the file length.
    /// </summary>
    public void Run(string kind, byte[] bytes, Func<string, long> readAll, long maxTensorBytesPerFileByte = 1)
    {
        WriteInPlace(bytes);
        Cases++;
        _total.Start();
        var clock = Stopwatch.StartNew();
        long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        bool ok = false;
        try
        {
            long largest = readAll(path);
            if (largest > Math.Max(1, bytes.Length) * maxTensorBytesPerFileByte)
                Failures.Add($"{kind}: read a {largest}-byte tensor from a {bytes.Length}-byte file");
            ok = true;
        }
        catch (CheckpointFormatException e)
        {
            var problem = e.Message[(path.Length + 2)..];
            var key = string.Join(' ', problem.Split(' ').Take(6));
            _messages[key] = _messages.GetValueOrDefault(key) + 1;
        }
        catch (Exception e)
        {
            Failures.Add($"{kind}: {e.GetType().Name}: {e.Message}\n  bytes (base64): {Convert.ToBase64String(bytes)}\n{e.StackTrace}");
        }
        finally
        {
            clock.Stop();
            _total.Stop();
        }
        MaxManagedBytesPerCase = Math.Max(MaxManagedBytesPerCase, GC.GetAllocatedBytesForCurrentThread() - allocatedBefore);
        if (clock.Elapsed > SlowestCase) SlowestCase = clock.Elapsed;
        var (s, r) = _byKind.GetValueOrDefault(kind);
        _byKind[kind] = ok ? (s + 1, r) : (s, r + 1);
        if (ok) Succeeded++;
        else Rejected++;
    }

    /// <summary>
    /// Overwrites the case file without first truncating it to zero (on ext4 that forces a flush on close and costs
    /// milliseconds per case).
    /// </summary>
    void WriteInPlace(byte[] bytes)
    {
        using var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read);
        stream.Write(bytes);
        stream.SetLength(bytes.Length);
    }

    /// <summary>Prints the totals, the outcomes per mutation kind and the most frequent refusals.</summary>
    public void Report()
    {
        output.WriteLine($"{Cases} cases in {Elapsed.TotalSeconds:F1} s: {Succeeded} read, {Rejected} refused with CheckpointFormatException, {Failures.Count} other failures");
        output.WriteLine($"slowest case {SlowestCase.TotalMilliseconds:F1} ms; most managed memory allocated by one case {MaxManagedBytesPerCase / 1024} KB");
        foreach (var (kind, (s, r)) in _byKind.OrderBy(k => k.Key, StringComparer.Ordinal))
            output.WriteLine($"  {kind,-24} read {s,5}  refused {r,5}");
        output.WriteLine("most frequent refusals:");
        foreach (var (message, count) in _messages.OrderByDescending(m => m.Value).Take(15))
            output.WriteLine($"  {count,5} × {message} ...");
        foreach (var failure in Failures.Take(5)) output.WriteLine("FAILURE " + failure);
    }
}
