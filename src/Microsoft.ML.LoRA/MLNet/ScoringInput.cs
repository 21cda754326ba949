namespace Microsoft.ML.LoRA.MLNet;

/// <summary>What one row gives a scoring stage: its text, the second text of a pair, and the adapter it asks for (null when the stage reads none).</summary>
internal readonly record struct ScoringInput(string? Text, string? Pair, string? Adapter = null);
