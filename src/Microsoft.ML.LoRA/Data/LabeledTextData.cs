using Microsoft.ML;

namespace Microsoft.ML.LoRA.Data;

/// <summary>
/// A labelled text file loaded as a streaming <see cref="IDataView"/> with the columns of
/// <see cref="LabeledTextColumns"/>, and which file columns they came from.
/// </summary>
/// <param name="Data">The rows: <see cref="LabeledTextColumns.Text"/>, and <see cref="LabeledTextColumns.TextPair"/> and
/// <see cref="LabeledTextColumns.Label"/> when selected; read lazily from the file each time a cursor walks them.</param>
/// <param name="File">The file's layout as detected.</param>
/// <param name="TextColumn">The file column the text came from.</param>
/// <param name="TextPairColumn">The file column the second text came from, or null.</param>
/// <param name="LabelColumn">The file column the label came from, or null when no label was read.</param>
public sealed record LabeledTextData(
    IDataView Data,
    TextDataFile File,
    string TextColumn,
    string? TextPairColumn,
    string? LabelColumn);
