namespace Microsoft.ML.LoRA.Data;

/// <summary>
/// The names of the columns in the <see cref="Microsoft.ML.IDataView"/> that <see cref="TextDataLoader"/> returns,
/// whatever the file called them. Every column is text (<see cref="Microsoft.ML.Data.TextDataViewType"/>).
/// </summary>
public static class LabeledTextColumns
{
    /// <summary>The text to classify.</summary>
    public const string Text = "Text";

    /// <summary>The second text of a pair (sentence-pair tasks), present only when a pair column was selected.</summary>
    public const string TextPair = "TextPair";

    /// <summary>The label, as it is written in the file ("0", "spam", "World", ...), present unless the label was left out.</summary>
    public const string Label = "Label";
}
