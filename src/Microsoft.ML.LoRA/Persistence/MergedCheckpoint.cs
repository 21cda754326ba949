using System.Text.Json;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Persistence;

/// <summary>
/// Writes a model with its adapters folded into the weights as a plain Hugging Face checkpoint folder
/// (config.json with the labels, and problem_type "regression" for a one-output model; model.safetensors, tokenizer files): loadable by
/// <c>AutoModelForSequenceClassification.from_pretrained</c> and by this library without any adapter.
/// </summary>
public static class MergedCheckpoint
{
    /// <summary>The merged tensors of any model of ours under Hugging Face names (no lora_A / lora_B). The caller disposes them.</summary>
    public static Dictionary<string, Tensor> MergedTensors(nn.Module model)
    {
        var adapted = LoraInjector.LinearLayers(model).Where(l => l.Value.HasAdapter && !l.Value.Merged)
            .ToDictionary(l => l.Key + ".weight", l => l.Value);
        using var _ = torch.no_grad();
        return TorchScopes.Keep(() =>
        {
            var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            foreach (var (name, p) in model.named_parameters())
            {
                if (LoraLinear.IsAdapterParameter(name)) continue;
                // The layer merges, so an adapter variant that merges otherwise than by adding its update (DoRA) is
                // written as it computes, and a merge that would write NaN or infinity is refused.
                result[name] = adapted.TryGetValue(name, out var layer) ? layer.MergedWeight() : p.detach().clone();
            }
            // A quantized base has no weight parameter: its layers write the dequantized weight with the adapter folded in.
            foreach (var (name, layer) in LoraInjector.LinearLayers(model).Where(l => l.Value.IsQuantized))
                result[name + ".weight"] = layer.MergedWeight();
            return result;
        });
    }

    /// <summary>Writes the merged checkpoint into <paramref name="folder"/> (created if needed).</summary>
    public static void Write(SequenceClassifier model, IReadOnlyList<string> labels, string folder, IReadOnlyDictionary<string, byte[]>? tokenizerFiles = null)
    {
        Directory.CreateDirectory(folder);
        var tensors = MergedTensors(model);
        try
        {
            SafeTensorsWriter.Save(Path.Combine(folder, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
        var config = model.Config.ToJson(labels);
        config["architectures"] = new System.Text.Json.Nodes.JsonArray(model.GetName());
        // One output is Hugging Face's regression head (num_labels = 1); say so, whatever the base config said.
        if (model.NumLabels == 1) config["problem_type"] = "regression";
        AtomicFile.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        foreach (var (name, bytes) in tokenizerFiles ?? new Dictionary<string, byte[]>())
            AtomicFile.Write(Path.Combine(folder, name), s => s.Write(bytes));
    }
}
