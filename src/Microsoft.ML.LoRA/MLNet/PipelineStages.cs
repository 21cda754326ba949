using Microsoft.ML;

namespace Microsoft.ML.LoRA.MLNet;

/// <summary>Finding the LoRA stage inside a fitted ML.NET pipeline.</summary>
public static class PipelineStages
{
    /// <summary>The stages of a pipeline, with nested chains flattened.</summary>
    public static IEnumerable<ITransformer> Flatten(ITransformer model)
    {
        if (model is IEnumerable<ITransformer> chain)
        {
            foreach (var t in chain)
                foreach (var inner in Flatten(t))
                    yield return inner;
        }
        else yield return model;
    }

    /// <summary>The pipeline's LoRA classifier; throws when it has none or more than one.</summary>
    public static LoraTextClassificationTransformer LoraStage(ITransformer model)
    {
        var stages = Flatten(model).OfType<LoraTextClassificationTransformer>().ToList();
        return stages.Count == 1 ? stages[0]
            : throw new ArgumentException(stages.Count == 0 ? "The pipeline has no LoraTextClassificationTransformer." : "The pipeline has more than one LoraTextClassificationTransformer.", nameof(model));
    }

    /// <summary>
    /// <paramref name="data"/> transformed by the pipeline's stages up to and including the LoRA stage: where the
    /// label and PredictedLabel are still keys, as ML.NET's evaluators need, even when later stages map them back to values.
    /// </summary>
    public static IDataView TransformThroughLoraStage(ITransformer model, IDataView data)
    {
        LoraStage(model);
        foreach (var stage in Flatten(model))
        {
            data = stage.Transform(data);
            if (stage is LoraTextClassificationTransformer) break;
        }
        return data;
    }
}
