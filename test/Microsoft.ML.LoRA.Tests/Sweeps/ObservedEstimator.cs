using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Persistence;
using TorchSharp;

namespace Microsoft.ML.LoRA.Tests.Sweeps;

/// <summary>Wraps a pipeline and hands a parameter tensor of each fitted LoRA model to <c>onFit</c> (to check disposal later).</summary>
public sealed class ObservedEstimator(IEstimator<ITransformer> inner, Action<torch.Tensor> onFit) : IEstimator<ITransformer>
{
    public ITransformer Fit(IDataView input)
    {
        var model = inner.Fit(input);
        foreach (var lora in PipelineStages.Flatten(model).OfType<LoraTextClassificationTransformer>())
            onFit(lora.Model.parameters().First());
        return model;
    }

    public SchemaShape GetOutputSchema(SchemaShape inputSchema) => inner.GetOutputSchema(inputSchema);
}
