namespace Microsoft.ML.LoRA.Models;

/// <summary>The LoRA switches of the LoRA options (LoraQuery, LoraKey, ...), each meaning a role a linear layer plays.</summary>
public enum LoraSwitch { Query, Key, Value, Projection, Mlp, Head }

/// <summary>
/// Where things live in one family's module tree, by Hugging Face name: the base model's prefix, the classification
/// head, the modules a base checkpoint may lack, which modules each LoRA switch means, and the base modules that
/// follow the last transformer layer (they train with it when only the last layers are fine-tuned).
/// </summary>
public sealed record FamilyLayout(
    string Family,
    string BasePrefix,
    IReadOnlyList<string> HeadModules,
    IReadOnlyList<string> CreatableModules,
    IReadOnlyDictionary<LoraSwitch, string> SwitchPatterns,
    IReadOnlyList<string> IgnoredCheckpointPrefixes,
    IReadOnlyList<string> ModulesAfterLayers)
{
    /// <summary>The LoRA switch patterns of <paramref name="switches"/> with <paramref name="head"/> for the head switch.</summary>
    public static IReadOnlyDictionary<LoraSwitch, string> WithHead(IReadOnlyDictionary<LoraSwitch, string> switches, string head) =>
        new Dictionary<LoraSwitch, string>(switches) { [LoraSwitch.Head] = head };
}
