using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Cli.Reporting;
using Microsoft.ML.LoRA.Training;

namespace Microsoft.ML.LoRA.Cli.Running;

/// <summary>
/// The folder a training run writes, holding everything needed to reproduce and inspect it: model.zip (the pipeline),
/// options.json (the command line and every setting), metrics.json (final metrics), history.json (per epoch),
/// training.png (loss and validation accuracy per epoch) and log.txt (messages).
/// <para>
/// A run is a transaction. It writes into <c>RUN_DIR/.staging/</c> (its options.json and resume.json first, then the
/// training checkpoints, then the outputs) and replaces the run's files only when it has them all: it writes the
/// commit marker <c>.staging/COMMIT</c> (atomically; it lists the new run's files), removes the previous run's files
/// the new run does not have, moves the new ones into place (renames within the folder) and deletes the staging
/// folder. A run killed before the marker leaves the previous run's files untouched; one killed after it is rolled
/// forward by the next <c>lora train</c> into the folder (with or without --resume). A new run into the folder
/// deletes an unmarked staging folder (an unfinished run: <c>--resume</c> continues it instead) and temporary files.
/// While a run has the folder open it holds <c>RUN_DIR/.lock</c> (an exclusive lock, released by the system when the
/// process dies, the file deleted when the run ends), so a second run into the same folder is refused.
/// </para>
/// </summary>
internal sealed partial class RunFolder : IDisposable
{
    public const string StagingName = ".staging";
    public const string MarkerName = "COMMIT";
    public const string ResumeName = "resume.json";
    public const string LockName = ".lock";

    FileStream? _lock;

    /// <summary>The files a run may have; a commit removes those of the previous run that the new run does not have.</summary>
    public static readonly IReadOnlyList<string> RunFiles = new[] { "model.zip", "options.json", "metrics.json", "history.json", TrainingChart.DefaultFileName, "log.txt" };

    RunFolder(string path, bool created)
    {
        Path = path;
        CreatedFolder = created;
    }

    /// <summary>The run folder (absolute).</summary>
    public string Path { get; }

    /// <summary>Whether this run created the run folder (a failed run then removes it when it leaves nothing in it).</summary>
    public bool CreatedFolder { get; }

    /// <summary>Where the run writes until it commits.</summary>
    public string StagingPath => System.IO.Path.Combine(Path, StagingName);

    public string ModelFile => File("model.zip");
    public string OptionsFile => File("options.json");
    public string MetricsFile => File("metrics.json");
    public string HistoryFile => File("history.json");
    public string LogFile => File("log.txt");

    /// <summary>The committed path of a run file (where it is once the run succeeds).</summary>
    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>The staged path of a run file (where the run writes it).</summary>
    public string Staged(string name) => System.IO.Path.Combine(StagingPath, name);

    /// <summary>The unfinished run's resume record, or null when there is none.</summary>
    public ResumeRecord? ReadResumeRecord()
    {
        var path = Staged(ResumeName);
        return System.IO.File.Exists(path) ? JsonSerializer.Deserialize<ResumeRecord>(System.IO.File.ReadAllText(path), JsonOutput.Indented) : null;
    }

    public bool HasCheckpoint => TrainingCheckpoint.Exists(StagingPath);

    /// <summary>
    /// Opens the run folder for a new run: creates it if missing, rolls a committed but unfinished commit forward,
    /// deletes an unfinished run's staging folder and temporary files, and creates an empty staging folder.
    /// </summary>
    public static RunFolder StartNew(string path, Action<string> log)
    {
        var full = System.IO.Path.GetFullPath(path);
        bool created = !Directory.Exists(full);
        Directory.CreateDirectory(full);
        var run = new RunFolder(full, created);
        run._lock = Lock(full);
        run.Recover(log, keepUnfinished: false);
        Directory.CreateDirectory(run.StagingPath);
        return run;
    }

    /// <summary>
    /// Opens a run folder to resume its unfinished run: rolls a committed but unfinished commit forward (then there is
    /// nothing to resume: <see cref="Finished"/>) and deletes temporary files; the unfinished run's staging folder stays.
    /// </summary>
    public static RunFolder OpenForResume(string path, Action<string> log)
    {
        var full = System.IO.Path.GetFullPath(path);
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"Run folder not found: {full}");
        var run = new RunFolder(full, created: false);
        run._lock = Lock(full);
        run.Finished = run.Recover(log, keepUnfinished: true);
        return run;
    }

    static FileStream Lock(string folder)
    {
        try
        {
            return new FileStream(System.IO.Path.Combine(folder, LockName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
        }
        catch (IOException e)
        {
            throw new IOException($"Another lora train is using the run folder {folder} (it holds {LockName}); wait for it to end, or choose another --output.", e);
        }
    }

    /// <summary>Releases the run folder's lock (deleting the lock file).</summary>
    public void Dispose()
    {
        _lock?.Dispose();
        _lock = null;
    }

    /// <summary>Whether opening the folder completed a commit that had been interrupted.</summary>
    public bool Finished { get; private set; }

    /// <summary>Makes the folder consistent; returns true when it rolled an interrupted commit forward.</summary>
    bool Recover(Action<string> log, bool keepUnfinished)
    {
        bool rolled = false;
        if (ReadMarker() is { } files)
        {
            log($"Completing the commit of the run that was stopped while replacing the files in {Path}.");
            RollForward(files);
            rolled = true;
        }
        else if (Directory.Exists(StagingPath) && !keepUnfinished)
        {
            log(HasCheckpoint
                ? $"Removing the unfinished run in {StagingPath} (its checkpoint included; 'lora train --resume {Path}' would have continued it)."
                : $"Removing the unfinished run's files in {StagingPath}.");
            Directory.Delete(StagingPath, recursive: true);
        }
        foreach (var file in Directory.EnumerateFiles(Path).Where(f => TemporaryFile().IsMatch(System.IO.Path.GetFileName(f))))
            System.IO.File.Delete(file);
        if (Directory.Exists(StagingPath))
            foreach (var file in Directory.EnumerateFiles(StagingPath).Where(f => TemporaryFile().IsMatch(System.IO.Path.GetFileName(f))))
                System.IO.File.Delete(file);
        return rolled;
    }

    /// <summary>AtomicFile's and TrainingChart's temporary files: .NAME.GUID.tmp, .NAME.GUID.png.</summary>
    [GeneratedRegex(@"^\..+\.[0-9a-f]{32}\.(tmp|png)$")]
    private static partial Regex TemporaryFile();

    public void WriteJson<T>(string file, T value) =>
        AtomicFile.WriteAllText(file, JsonSerializer.Serialize(value, JsonOutput.Indented) + Environment.NewLine);

    /// <summary>Writes training.png into the staging folder.</summary>
    public string WriteChart(TrainingHistory history) => TrainingChart.Save(history, StagingPath);

    /// <summary>
    /// Replaces the run's files with the staged ones: writes the commit marker (the commit point), then rolls forward.
    /// <paramref name="crash"/> is called at each stage (tests kill the process there).
    /// </summary>
    public void Commit(Action<string>? crash = null)
    {
        var files = RunFiles.Where(f => System.IO.File.Exists(Staged(f))).ToList();
        crash?.Invoke("staged");
        AtomicFile.WriteAllText(Staged(MarkerName), JsonSerializer.Serialize(files) + Environment.NewLine);
        crash?.Invoke("marked");
        RollForward(files, crash);
    }

    /// <summary>Idempotent: removes the previous run's files the new run lacks, moves the new ones in, deletes the staging folder.</summary>
    void RollForward(IReadOnlyList<string> files, Action<string>? crash = null)
    {
        foreach (var stale in RunFiles.Except(files)) System.IO.File.Delete(File(stale));
        foreach (var name in files)
        {
            if (!System.IO.File.Exists(Staged(name))) continue;   // moved before an interruption
            System.IO.File.Move(Staged(name), File(name), overwrite: true);
            crash?.Invoke("moving");
        }
        crash?.Invoke("moved");
        // The checkpoint and resume record go before the marker: a staging folder without a marker is never resumable after a commit.
        foreach (var file in Directory.EnumerateFiles(StagingPath).Where(f => System.IO.Path.GetFileName(f) != MarkerName))
            System.IO.File.Delete(file);
        System.IO.File.Delete(Staged(MarkerName));
        Directory.Delete(StagingPath, recursive: true);
    }

    List<string>? ReadMarker()
    {
        var marker = Staged(MarkerName);
        if (!System.IO.File.Exists(marker)) return null;
        var files = JsonSerializer.Deserialize<List<string>>(System.IO.File.ReadAllText(marker)) ?? new List<string>();
        return files.Where(RunFiles.Contains).ToList();
    }

    /// <summary>
    /// After a failed run: keeps the staging folder when it holds a training checkpoint (what --resume needs), else
    /// deletes it, and deletes the run folder too when this run created it and nothing else is in it.
    /// </summary>
    public bool Abandon()
    {
        bool keep = HasCheckpoint && System.IO.File.Exists(Staged(ResumeName));
        Dispose();
        try
        {
            if (!keep && Directory.Exists(StagingPath)) Directory.Delete(StagingPath, recursive: true);
            if (!keep && CreatedFolder && !Directory.EnumerateFileSystemEntries(Path).Any()) Directory.Delete(Path);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return keep;
    }

    /// <summary>A default run folder under ./runs named after the command and the time.</summary>
    public static string DefaultPath(string command) =>
        System.IO.Path.Combine("runs", $"{command}-{DateTime.Now:yyyyMMdd-HHmmss}");
}

/// <summary>
/// .staging/resume.json: what <c>lora train --resume</c> needs to continue an unfinished run: its arguments (from
/// "train" on, as parsed) and the folder they were given in (relative paths are relative to it).
/// </summary>
internal sealed record ResumeRecord(IReadOnlyList<string> Arguments, string WorkingDirectory, DateTime Started);
