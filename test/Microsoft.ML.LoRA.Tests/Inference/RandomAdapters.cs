using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using TorchSharp;

namespace Microsoft.ML.LoRA.Tests.Inference;

/// <summary>
/// Writes PEFT adapter folders as a fit would leave them, without fitting: the base model in a folder, LoRA applied by
/// the options, and every trainable parameter (factors, DoRA magnitudes, the head and other saved modules, trained
/// biases) moved off its starting value by seeded noise, so that each adapter scores differently.
/// </summary>
internal static class RandomAdapters
{
    public static string Write(string baseFolder, string folder, LoraOptions options, int seed, int? numLabels = null)
    {
        using var model = PretrainedModel.Load(baseFolder, numLabels);
        LoraInjector.Apply(model, options);
        Perturb(model, seed);
        PeftAdapter.Save(model, folder, options);
        return folder;
    }

    /// <summary>Moves every trainable parameter of <paramref name="model"/> off its starting value by seeded noise, as a fit would.</summary>
    public static void Perturb(SequenceClassifier model, int seed)
    {
        lock (TorchRandomLock.Sync)
        {
            torch.manual_seed(seed);
            using var scope = torch.NewDisposeScope();
            using var _ = torch.no_grad();
            foreach (var (_, parameter) in model.named_parameters().Where(p => p.parameter.requires_grad))
                parameter.add_(torch.randn_like(parameter).mul_(0.1));
        }
    }
}
