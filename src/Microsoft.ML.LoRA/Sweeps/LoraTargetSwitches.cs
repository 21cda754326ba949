using Microsoft.ML.LoRA.Lora;

namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>
/// Which layer groups one trial adapts, as the six switches of <see cref="LoraOptions"/>. A trial whose targets are
/// set adapts exactly these groups (an all-off trial adapts nothing and trains only the classification head).
/// </summary>
public readonly record struct LoraTargetSwitches(bool Query, bool Key, bool Value, bool Projection, bool Mlp, bool Head)
{
    /// <summary>
    /// The library's default targets: every linear layer of the transformer layers (query, key, value, the attention
    /// output projection and both feed-forward layers), the head excluded.
    /// </summary>
    public static LoraTargetSwitches Default => new(true, true, true, true, true, false);

    /// <summary>Short readable form used in trial ids: the "on" switches joined with '+' (q, k, v, o, mlp, head), or "none".</summary>
    public string Label
    {
        get
        {
            var on = new List<string>();
            if (Query) on.Add("q");
            if (Key) on.Add("k");
            if (Value) on.Add("v");
            if (Projection) on.Add("o");
            if (Mlp) on.Add("mlp");
            if (Head) on.Add("head");
            return on.Count == 0 ? "none" : string.Join("+", on);
        }
    }

    /// <summary>
    /// The switches <paramref name="options"/> effectively adapts: its switches, or <see cref="Default"/> when it names no
    /// target at all (the library default); null when it selects targets by module name or regex, which switches cannot express.
    /// </summary>
    public static LoraTargetSwitches? EffectiveOf(LoraOptions options)
    {
        if (options.TargetModules is { Count: > 0 } || options.TargetModulesRegex is not null) return null;
        var switches = new LoraTargetSwitches(options.LoraQuery, options.LoraKey, options.LoraValue, options.LoraProjection, options.LoraMlp, options.LoraHead);
        bool explicitNone = options.TargetModules is not null;   // an empty list means "no adapter" unless a switch is on
        return switches == default && !explicitNone ? Default : switches;
    }

    /// <summary>Sets exactly these switches on <paramref name="options"/> and clears name-based targets, so nothing else is adapted.</summary>
    public void ApplyTo(LoraOptions options)
    {
        options.TargetModules = new List<string>();
        options.TargetModulesRegex = null;
        options.LoraQuery = Query;
        options.LoraKey = Key;
        options.LoraValue = Value;
        options.LoraProjection = Projection;
        options.LoraMlp = Mlp;
        options.LoraHead = Head;
    }

    /// <inheritdoc/>
    public override string ToString() => Label;
}
