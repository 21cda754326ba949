using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Training;
using TorchSharp;

namespace Microsoft.ML.LoRA.Benchmarks;

/// <summary>The models the benchmarks run: built from a config with random weights, with the anchor's LoRA set-up.</summary>
public static class BenchmarkModels
{
    /// <summary>A freshly initialised classifier with two labels, seeded so runs are repeatable.</summary>
    public static SequenceClassifier Create(TransformerConfig config, int seed)
    {
        torch.manual_seed(seed);
        return ModelFactory.Create(config, numLabels: 2);
    }

    /// <summary>
    /// The anchor's LoRA: adapters of rank <paramref name="rank"/> on query and value, base weights frozen, the
    /// classification head trained in full.
    /// </summary>
    public static LoraInjectionReport ApplyLora(SequenceClassifier model, int rank, double alpha, double dropout) =>
        LoraInjector.Apply(model, new LoraOptions
        {
            LoraQuery = true,
            LoraValue = true,
            Rank = rank,
            Alpha = alpha,
            Dropout = dropout,
        });

    /// <summary>AdamW over the parameters of <paramref name="model"/> that require a gradient, as the anchor's optimizer.</summary>
    public static AdamWOptimizer Optimizer(global::TorchSharp.torch.nn.Module model, BenchmarkOptions o) =>
        new(new[] { (model.parameters().Where(p => p.requires_grad), o.WeightDecay) }, o.LearningRate);

    /// <summary>Folds every adapter into its base weight.</summary>
    public static void MergeAll(SequenceClassifier model)
    {
        foreach (var layer in LoraInjector.LinearLayers(model).Values) layer.Merge();
    }

    /// <summary>Takes every merged adapter back out of its base weight.</summary>
    public static void UnmergeAll(SequenceClassifier model)
    {
        foreach (var layer in LoraInjector.LinearLayers(model).Values) layer.Unmerge();
    }
}
