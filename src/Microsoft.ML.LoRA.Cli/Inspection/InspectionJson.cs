namespace Microsoft.ML.LoRA.Cli.Inspection;

/// <summary>The JSON object <c>lora inspect --json</c> prints.</summary>
internal sealed record InspectionJson(
    string Family,
    string ModelType,
    int Layers,
    int HiddenSize,
    int NumLabels,
    long TotalParameters,
    long TrainableParameters,
    long LoraParameters,
    long BaseParameters,
    double TrainablePercent,
    int? Rank,
    double? Alpha,
    IReadOnlyList<string> TargetModules,
    IReadOnlyList<string> AdaptedModules,
    IReadOnlyList<string> SavedModules)
{
    public static InspectionJson From(ModelInspection i) => new(
        i.Config.Family,
        i.Config.ModelType,
        i.Config.NumLayers,
        i.Config.HiddenSize,
        i.NumLabels,
        i.Counts.Total,
        i.Counts.Trainable,
        i.Counts.Lora,
        i.Counts.Base,
        Math.Round(i.Counts.TrainablePercent, 4),
        i.HasAdapters ? i.Lora.Rank : null,
        i.HasAdapters ? i.Lora.Alpha : null,
        i.TargetModules,
        i.AdaptedModules,
        i.SavedModules);
}
