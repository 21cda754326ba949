using Microsoft.ML.LoRA.MLNet;

namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>
/// Copies <see cref="LoraTextClassifierOptions"/> so a trial can change its copy without touching the caller's object.
/// Every public settable property is copied (so options added later are copied too); the LoRA options are deep-copied,
/// the rest (data views, progress sinks, Hub options) are shared references.
/// </summary>
internal static class ClassifierOptionsCopy
{
    static readonly System.Reflection.PropertyInfo[] Settable = typeof(LoraTextClassifierOptions)
        .GetProperties(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance)
        .Where(p => p.CanRead && p.CanWrite && p.GetIndexParameters().Length == 0 && !p.IsDefined(typeof(SettingAliasAttribute), inherit: true)).ToArray();

    public static LoraTextClassifierOptions Of(LoraTextClassifierOptions source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var copy = new LoraTextClassifierOptions();
        foreach (var p in Settable) p.SetValue(copy, p.GetValue(source));
        copy.Lora = (source.Lora ?? throw new ArgumentException("The base options have no Lora settings (Lora is null).", nameof(source))).Clone();
        return copy;
    }
}
