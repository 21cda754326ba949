using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using TorchSharp;

namespace Microsoft.ML.LoRA.Cli.Inspection;

/// <summary>
/// Builds a model from its config alone and counts its parameters with LoRA applied, without allocating the weights:
/// the model is built on TorchSharp's meta device, where tensors have shapes but no storage (BERT-base costs
/// nothing instead of 440 MB).
/// </summary>
/// <remarks>
/// TorchSharp's default device is process-wide. It is switched to meta only for the build, under a lock, and switched
/// back before returning; code on other threads that creates tensors at that moment would get meta tensors, so tests
/// that inspect run in a collection that does not run in parallel with others.
/// </remarks>
internal static class ModelInspector
{
    static readonly object DefaultDeviceGate = new();

    /// <summary>Builds the model of <paramref name="config"/> with <paramref name="numLabels"/> outputs and applies <paramref name="lora"/>.</summary>
    public static ModelInspection Inspect(TransformerConfig config, int numLabels, LoraOptions lora)
    {
        lora.Validate();
        lock (DefaultDeviceGate)
        {
            var previous = torch.get_default_device();
            torch.set_default_device(torch.META);
            try
            {
                using var model = ModelFactory.Create(config, numLabels);
                var report = LoraInjector.Apply(model, lora);
                var counts = ParameterCounts.Of(model);
                var allModules = model.named_modules().Select(m => m.name).Where(n => n.Length > 0).ToList();
                var targets = LoraInjector.MinimalSuffixes(report.AdaptedModules, allModules);
                return new ModelInspection(config, numLabels, counts, report.AdaptedModules, targets, report.SavedModules, lora.Clone());
            }
            finally
            {
                torch.set_default_device(previous);
            }
        }
    }
}
