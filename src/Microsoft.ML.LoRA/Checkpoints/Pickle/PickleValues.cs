namespace Microsoft.ML.LoRA.Checkpoints.Pickle;

// The values the restricted unpickler builds. Python tuples are object?[], lists List<object?>, ints long, floats
// double, strings string, None null; these classes cover the rest. None of them runs code.

/// <summary>The MARK sentinel on the unpickler's stack.</summary>
internal sealed class PickleMark
{
    public static readonly PickleMark Instance = new();
    PickleMark() { }
}

/// <summary>A GLOBAL that passed the allow-list: a name, never a resolved callable.</summary>
internal sealed record PickleGlobal(string Module, string Name)
{
    public string FullName => $"{Module}.{Name}";
    public override string ToString() => FullName;
}

/// <summary>A Python dict or collections.OrderedDict: its items in insertion order (duplicates kept, later wins).</summary>
internal sealed class PickleDict
{
    public List<KeyValuePair<object?, object?>> Items { get; } = new();
}
