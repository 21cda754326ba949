using System.Diagnostics;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary>Runs the real <c>lora</c> executable (lora.dll from the CLI's build output) as its own process.</summary>
public static class ProcessRun
{
    /// <summary>lora.dll in the CLI project's output folder, built with the same configuration as these tests.</summary>
    public static string LoraDll()
    {
        var testOutput = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string framework = testOutput.Name, configuration = testOutput.Parent!.Name;
        var path = Path.Combine(SharedData.RepoRoot, "src", "Microsoft.ML.LoRA.Cli", "bin", configuration, framework, "lora.dll");
        File.Exists(path).Should().BeTrue($"the CLI is built with the tests ({path})");
        return path;
    }

    public static Task<CliResult> Lora(params string[] args) => Lora(new Dictionary<string, string>(), args);

    /// <summary>Runs lora with <paramref name="environment"/> added to this process's environment variables.</summary>
    public static Task<CliResult> Lora(IReadOnlyDictionary<string, string> environment, params string[] args) => Lora(environment, killAfter: null, args);

    /// <summary>
    /// Runs lora with a fresh, empty temporary folder (TMPDIR) and returns what it created directly in that folder while
    /// it ran, even what it deleted again before it exited (.NET's diagnostics socket, which would be there too, is
    /// turned off).
    /// </summary>
    public static async Task<(CliResult Result, IReadOnlyList<string> Created)> LoraWatchingTempFolder(params string[] args)
    {
        using var temp = new TempDir();
        var created = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var watcher = new FileSystemWatcher(temp.Path) { NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName };
        watcher.Created += (_, e) => created.Enqueue(e.Name!);
        watcher.EnableRaisingEvents = true;
        var result = await Lora(new Dictionary<string, string> { ["TMPDIR"] = temp.Path, ["DOTNET_EnableDiagnostics"] = "0" }, args);
        await Task.Delay(500);   // the last events arrive
        return (result, created.Concat(Directory.EnumerateFileSystemEntries(temp.Path).Select(Path.GetFileName)).Distinct().ToList()!);
    }

    /// <summary>
    /// Runs lora and kills it (SIGKILL, the whole process tree) after <paramref name="killAfter"/> unless it has
    /// exited by then; a killed run's exit code is 137.
    /// </summary>
    public static async Task<CliResult> Lora(IReadOnlyDictionary<string, string> environment, TimeSpan? killAfter, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var (name, value) in environment) start.Environment[name] = value;
        start.ArgumentList.Add(LoraDll());
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (killAfter is { } delay)
        {
            using var kill = new CancellationTokenSource(delay);
            try { await process.WaitForExitAsync(kill.Token); }
            catch (OperationCanceledException) { process.Kill(entireProcessTree: true); }
        }
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);
        return new CliResult(process.ExitCode, await stdout, await stderr);
    }
}
