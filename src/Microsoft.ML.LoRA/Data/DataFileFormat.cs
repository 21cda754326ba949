namespace Microsoft.ML.LoRA.Data;

/// <summary>How a labelled text file is laid out.</summary>
public enum DataFileFormat
{
    /// <summary>Decided from the file name: <c>.jsonl</c> / <c>.ndjson</c> (optionally <c>.gz</c>) are JSON Lines, anything else is delimited text.</summary>
    Auto,
    /// <summary>Delimited text (TSV, CSV, semicolon- or pipe-separated), with or without a header row.</summary>
    Delimited,
    /// <summary>JSON Lines: one JSON object per line; string, number and bool fields are read as text.</summary>
    JsonLines,
}
