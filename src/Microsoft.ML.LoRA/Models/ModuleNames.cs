namespace Microsoft.ML.LoRA.Models;

/// <summary>Relations between dotted module names (<c>bert.encoder.layer.0</c>, <c>classifier</c>).</summary>
internal static class ModuleNames
{
    /// <summary>True when one module is the other or contains it.</summary>
    public static bool Overlaps(string a, string b) =>
        a == b || a.StartsWith(b + ".", StringComparison.Ordinal) || b.StartsWith(a + ".", StringComparison.Ordinal);
}
