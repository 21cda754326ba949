using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Lora;

namespace Microsoft.ML.LoRA.Cli.Inspection;

/// <summary>What <see cref="ModelInspector"/> found: the model's shape and its parameter counts under some LoRA options.</summary>
internal sealed record ModelInspection(
    TransformerConfig Config,
    int NumLabels,
    ParameterCounts Counts,
    IReadOnlyList<string> AdaptedModules,
    IReadOnlyList<string> TargetModules,
    IReadOnlyList<string> SavedModules,
    LoraOptions Lora)
{
    /// <summary>True when at least one layer carries an adapter.</summary>
    public bool HasAdapters => AdaptedModules.Count > 0;
}
