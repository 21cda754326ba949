using Microsoft.ML;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.LoRA.MLNet;

/// <summary>
/// Fine-tunes a Hugging Face transformer with LoRA to predict a number from a text or a text pair (ratings, sentence
/// similarity): one output (Hugging Face's num_labels = 1, problem_type "regression"), mean squared error. Create it
/// with <c>mlContext.Regression.Trainers.LoraTextRegressor(...)</c>. The label must be Single; the fitted model
/// appends a Single Score column that <c>mlContext.Regression.Evaluate</c> reads. The fitted model is the same
/// transformer type as the classifiers' (<see cref="LoraModelInfo.Task"/> is <see cref="ClassifierTask.Regression"/>),
/// so it is saved, loaded, exported and merged as they are.
/// </summary>
public sealed class LoraTextRegressionEstimator : IEstimator<LoraTextClassificationTransformer>
{
    readonly LoraTextClassificationEstimator _inner;

    /// <summary>Creates the estimator; messages go to <paramref name="context"/>'s Log event.</summary>
    public LoraTextRegressionEstimator(MLContext context, LoraTextRegressorOptions options)
        : this((IChannelProvider)context, options) { }

    internal LoraTextRegressionEstimator(IChannelProvider context, LoraTextRegressorOptions options)
    {
        _inner = new LoraTextClassificationEstimator(context, options ?? throw new ArgumentNullException(nameof(options)), ClassifierTask.Regression);
        Options = options;
    }

    /// <summary>The options this estimator trains with.</summary>
    public LoraTextRegressorOptions Options { get; }

    public LoraTextClassificationTransformer Fit(IDataView input) => _inner.Fit(input);

    public SchemaShape GetOutputSchema(SchemaShape inputSchema) => _inner.GetOutputSchema(inputSchema);
}
