namespace Microsoft.ML.LoRA.Cli.Infrastructure;

/// <summary>The exit codes of <c>lora</c>. Scripts may rely on them; docs/cli.md lists them.</summary>
internal static class ExitCodes
{
    /// <summary>The command did what it was asked.</summary>
    public const int Success = 0;

    /// <summary>Something failed that is not the user's input (a bug, a native library error).</summary>
    public const int Failure = 1;

    /// <summary>The command line is wrong: an unknown option, a missing or invalid value, options that conflict.</summary>
    public const int Usage = 2;

    /// <summary>A file or folder named on the command line does not exist.</summary>
    public const int NotFound = 3;

    /// <summary>A file exists but its content cannot be used (malformed JSON, config, checkpoint or data).</summary>
    public const int InvalidInput = 4;

    /// <summary>A file could not be read or written (permissions, disk full).</summary>
    public const int IoError = 5;

    /// <summary>The run was cancelled (Ctrl+C), as shells report SIGINT.</summary>
    public const int Cancelled = 130;
}
