using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Inference;

namespace Microsoft.ML.LoRA.MLNet;

/// <summary>
/// The estimator of <see cref="LoraAdapterSetTransformer"/>: nothing is trained, so <see cref="Fit"/> checks the input's
/// columns and returns the transformer. Create it with <c>mlContext.Transforms.ScoreWithLoraAdapters(set, ...)</c>.
/// </summary>
public sealed class LoraAdapterSetEstimator : IEstimator<LoraAdapterSetTransformer>
{
    readonly LoraAdapterSetTransformer _transformer;

    internal LoraAdapterSetEstimator(LoraAdapterSetTransformer transformer) => _transformer = transformer;

    /// <summary>Checks that <paramref name="input"/> has the text, pair and adapter columns, and returns the transformer.</summary>
    public LoraAdapterSetTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        _transformer.GetOutputSchema(input.Schema);
        return _transformer;
    }

    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        foreach (var name in new[] { _transformer.TextColumnName, _transformer.TextPairColumnName, _transformer.AdapterColumnName }.OfType<string>())
        {
            if (!inputSchema.TryFind(name, out var column))
                throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Column '{name}' is not in the input schema.");
            if (column.ItemType is not TextDataViewType || column.Kind != SchemaShape.Column.VectorKind.Scalar)
                throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Column '{name}' must be a scalar text column.");
        }
        // The score columns as the transformer appends them, described by ML.NET itself.
        var appended = _transformer.Scores.AppendTo(new DataViewSchema.Builder().ToSchema());
        return SchemaShapes.With(inputSchema, SchemaShapes.FromSchema(appended));
    }
}
