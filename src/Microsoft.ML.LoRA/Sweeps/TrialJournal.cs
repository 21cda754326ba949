using System.Text;
using System.Text.Json;

namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>
/// trials.jsonl: an append-only journal with one JSON line per finished trial, each appended in one write and flushed
/// to disk before the sweep moves on. A crash can only leave a partial last line (no newline); <see cref="Open"/> cuts
/// it off, so that trial is trained again and the file stays valid. A damaged complete line is reported, not skipped.
/// </summary>
internal sealed class TrialJournal
{
    readonly string _path;

    TrialJournal(string path, IReadOnlyList<TrialRecord> records, bool droppedPartialLine)
    {
        _path = path;
        Records = records;
        DroppedPartialLine = droppedPartialLine;
    }

    /// <summary>The records read when the journal was opened, in file order.</summary>
    public IReadOnlyList<TrialRecord> Records { get; }

    /// <summary>True when <see cref="Open"/> found and removed a partial last line.</summary>
    public bool DroppedPartialLine { get; }

    /// <summary>Reads the journal at <paramref name="path"/> (missing: empty), removing a partial last line.</summary>
    public static TrialJournal Open(string path)
    {
        if (!File.Exists(path)) return new TrialJournal(path, Array.Empty<TrialRecord>(), false);
        var bytes = File.ReadAllBytes(path);
        int end = Array.LastIndexOf(bytes, (byte)'\n') + 1;   // 0 when there is no complete line
        bool partial = end < bytes.Length;
        if (partial)
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.None);
            stream.SetLength(end);
            stream.Flush(flushToDisk: true);
        }
        var records = new List<TrialRecord>();
        var lines = Encoding.UTF8.GetString(bytes, 0, end).Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0) continue;
            TrialRecord? record;
            try { record = JsonSerializer.Deserialize<TrialRecord>(line, SweepJson.Line); }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{path}, line {i + 1}, is not a trial record ({e.Message}). Delete that line to train the trial again, then rerun the sweep.", e);
            }
            if (record is null || string.IsNullOrEmpty(record.Id))
                throw new InvalidDataException($"{path}, line {i + 1}, has no trial id. Delete that line to train the trial again, then rerun the sweep.");
            records.Add(record);
        }
        return new TrialJournal(path, records, partial);
    }

    /// <summary>Appends <paramref name="record"/> as one line and flushes it to disk.</summary>
    public void Append(TrialRecord record)
    {
        var line = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(record, SweepJson.Line) + "\n");
        using var stream = new FileStream(_path, FileMode.Append, FileAccess.Write, FileShare.Read);
        stream.Write(line);
        stream.Flush(flushToDisk: true);
    }
}
