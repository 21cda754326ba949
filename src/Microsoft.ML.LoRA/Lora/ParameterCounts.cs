using Microsoft.ML.LoRA.Models;
using TorchSharp;

namespace Microsoft.ML.LoRA.Lora;

/// <summary>
/// Parameter counts of a model, as PEFT's <c>print_trainable_parameters</c> reports them: <see cref="Total"/> counts
/// every parameter including the adapters; <see cref="Base"/> is the model without adapters.
/// </summary>
public sealed record ParameterCounts(long Total, long Trainable, long Lora)
{
    /// <summary>Parameters of the model without its adapters.</summary>
    public long Base => Total - Lora;

    /// <summary>Trainable share of all parameters, in percent.</summary>
    public double TrainablePercent => Total == 0 ? 0 : 100.0 * Trainable / Total;

    /// <summary>Counts the parameters of a module.</summary>
    public static ParameterCounts Of(torch.nn.Module model)
    {
        long total = 0, trainable = 0, lora = 0;
        foreach (var (name, p) in model.named_parameters())
        {
            long n = p.numel();
            total += n;
            if (p.requires_grad) trainable += n;
            if (LoraLinear.IsAdapterParameter(name)) lora += n;
        }
        // A quantized base keeps its weights packed rather than as parameters; they count as the weights they stand for.
        foreach (var (_, module) in model.named_modules())
            if (module is LoraLinear { IsQuantized: true } layer) total += layer.InFeatures * layer.OutFeatures;
        return new ParameterCounts(total, trainable, lora);
    }
}
