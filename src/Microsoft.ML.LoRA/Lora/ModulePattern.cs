using System.Text.RegularExpressions;

namespace Microsoft.ML.LoRA.Lora;

/// <summary>
/// PEFT's rules for naming modules by pattern: which key of a <c>rank_pattern</c> / <c>alpha_pattern</c> applies to a
/// module, and which transformer layer a module sits in for <c>layers_to_transform</c> / <c>layers_pattern</c>.
/// </summary>
public static class ModulePattern
{
    static readonly Regex DefaultLayerIndex = new(@"\.(?:layer|layers|h|block|blocks)\.(\d+)\.", RegexOptions.Compiled);

    /// <summary>
    /// The first key of <paramref name="patterns"/> (in their order) that selects <paramref name="module"/> as PEFT's
    /// <c>get_pattern_key</c> does: the key, read as a regular expression, matches the end of the name at a dot boundary
    /// (<c>re.match(rf"(.*\.)?({key})$", module)</c>); null when none does.
    /// </summary>
    public static string? FirstMatch(IEnumerable<string> patterns, string module) =>
        patterns.FirstOrDefault(key => Regex.IsMatch(module, $@"^(.*\.)?(?:{key})$"));

    /// <summary>
    /// The transformer layer a module or parameter belongs to: the number after the first <c>.NAME.</c> segment whose
    /// NAME is one of <paramref name="layersPattern"/> (PEFT's <c>layers_pattern</c>), or by default one of layer,
    /// layers, h, block, blocks (<c>...layer.3....</c> gives 3); null when there is none.
    /// </summary>
    public static int? LayerIndexOf(string name, IReadOnlyCollection<string>? layersPattern = null)
    {
        var regex = layersPattern is { Count: > 0 }
            ? new Regex($@"\.(?:{string.Join('|', layersPattern.Select(Regex.Escape))})\.(\d+)\.")
            : DefaultLayerIndex;
        var m = regex.Match(name);
        return m.Success ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : null;
    }

    /// <summary>Throws <see cref="ArgumentException"/> when a key of <paramref name="patterns"/> is not a valid regular expression.</summary>
    internal static void Validate(IEnumerable<string> patterns, string option)
    {
        foreach (var key in patterns)
        {
            try { _ = new Regex(key); }
            catch (ArgumentException e) { throw new ArgumentException($"{option} key '{key}' is not a valid regular expression: {e.Message}", option); }
        }
    }
}
