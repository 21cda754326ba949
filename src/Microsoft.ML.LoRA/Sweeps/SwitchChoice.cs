namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>How a search space treats one LoRA target switch (<c>LoraQuery</c>, <c>LoraKey</c> ...).</summary>
public enum SwitchChoice
{
    /// <summary>Not searched: every trial takes the base options' targets (see <see cref="LoraSearchSpace"/>). Default.</summary>
    Inherit,
    /// <summary>Off in every trial.</summary>
    Off,
    /// <summary>On in every trial.</summary>
    On,
    /// <summary>Searched: trials with the switch off and trials with it on (doubles the grid).</summary>
    Both,
}
