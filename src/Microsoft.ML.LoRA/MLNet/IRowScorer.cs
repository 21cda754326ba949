using Microsoft.ML;

namespace Microsoft.ML.LoRA.MLNet;

/// <summary>
/// A stage that appends score columns computed from some input columns of each row: what <see cref="ScoredDataView"/>
/// (batched, lazy) and <see cref="ScoringRowMapper"/> (row at a time, for PredictionEngine) need from it.
/// </summary>
internal interface IRowScorer
{
    /// <summary>The columns the stage appends and how each is computed from a row's logits.</summary>
    ScoreColumns Scores { get; }

    /// <summary>Rows read ahead and scored together.</summary>
    int ScoringWindow { get; }

    /// <summary>The input schema with the score columns appended; throws naming a missing or mistyped input column.</summary>
    DataViewSchema GetOutputSchema(DataViewSchema inputSchema);

    /// <summary>The input columns scoring reads; throws naming a missing or mistyped column.</summary>
    IReadOnlyList<DataViewSchema.Column> InputColumnsOf(DataViewSchema schema);

    /// <summary>A function reading the current row's <see cref="ScoringInput"/> from <paramref name="row"/>.</summary>
    Func<ScoringInput> InputReader(DataViewRow row);

    /// <summary>Logits [rows][classes] of the rows, in the order given.</summary>
    float[][] Logits(IReadOnlyList<ScoringInput> rows);
}
