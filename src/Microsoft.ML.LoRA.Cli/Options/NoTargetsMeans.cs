namespace Microsoft.ML.LoRA.Cli.Options;

/// <summary>What a command does when neither --targets nor a --lora-* switch is given.</summary>
internal enum NoTargetsMeans
{
    /// <summary>No adapter at all: only the classification head trains (inspect's reading).</summary>
    NoAdapters,
    /// <summary>The library's default: adapt every linear layer of the transformer layers (for train and adapt).</summary>
    LibraryDefault,
}
