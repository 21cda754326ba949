namespace Microsoft.ML.LoRA.MLNet;

/// <summary>Annotation names ML.NET uses (its AnnotationUtils class is internal).</summary>
internal static class AnnotationNames
{
    public const string KeyValues = "KeyValues";
    public const string SlotNames = "SlotNames";
    public const string ScoreColumnKind = "ScoreColumnKind";
    public const string ScoreValueKind = "ScoreValueKind";
}
