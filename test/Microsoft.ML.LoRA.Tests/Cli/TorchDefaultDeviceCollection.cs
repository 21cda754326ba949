namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary>
/// Tests that build models on TorchSharp's meta device (inspect). TorchSharp's default device is process-wide, so
/// these run alone, never in parallel with tests that create real tensors.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TorchDefaultDeviceCollection
{
    public const string Name = "TorchSharp default device";
}
