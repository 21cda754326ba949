namespace Microsoft.ML.LoRA.Cli.Running;

/// <summary>Finds the project's shared data folder: $LORA_SHARED, or a "shared" folder beside the current folder or an ancestor.</summary>
internal static class SharedData
{
    /// <summary>The absolute path of <paramref name="relative"/> inside the shared folder, or null when not found.</summary>
    public static string? Find(string relative)
    {
        var env = Environment.GetEnvironmentVariable("LORA_SHARED");
        if (!string.IsNullOrEmpty(env) && Directory.Exists(Path.Combine(env, relative))) return Path.GetFullPath(Path.Combine(env, relative));
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", relative);
            if (Directory.Exists(candidate)) return candidate;
        }
        return null;
    }
}
