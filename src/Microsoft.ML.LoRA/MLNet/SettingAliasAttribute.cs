namespace Microsoft.ML.LoRA.MLNet;

/// <summary>
/// Marks an options property that is another name of a setting (the name ML.NET's TextClassification trainer uses):
/// reading or writing it reads or writes <see cref="Setting"/>. Code that lists or fingerprints settings skips it, so
/// no setting is counted twice.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class SettingAliasAttribute(string setting) : Attribute
{
    /// <summary>The property that holds the setting.</summary>
    public string Setting { get; } = setting;
}
