using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models.Quantization;

namespace Microsoft.ML.LoRA.Models;

/// <summary>Builds a family's classifier and fills it from a checkpoint folder.</summary>
public static class PretrainedModel
{
    /// <summary>
    /// Loads the model in <paramref name="folder"/> with <paramref name="numLabels"/> outputs (default: the config's
    /// num_labels). A missing or differently sized head is created and reported through <paramref name="log"/>.
    /// With <paramref name="quantization"/> the transformer layers' linear weights are kept quantized (QLoRA's base),
    /// each packed as it is read, so the model never holds them all in fp32.
    /// </summary>
    public static SequenceClassifier Load(CheckpointFolder folder, int? numLabels = null, Action<string>? log = null, QuantizedBase? quantization = null)
    {
        // A checkpoint saved in a quantized format (bitsandbytes' packed weights with absmax / quant_map tensors, GPTQ,
        // AWQ) holds no float weights to read; say so rather than report its tensors' shapes.
        if (folder.Config.Raw["quantization_config"] is System.Text.Json.Nodes.JsonObject saved)
            throw new CheckpointFormatException(folder.Config.Source,
                $"the checkpoint was saved quantized ({saved["quant_method"]?.ToString() ?? "quantization_config"}), which this library does not read: " +
                "load the original (fp32, fp16 or bf16) checkpoint, and keep its base quantized in memory with LoraOptions.BaseQuantization (--quantize nf4)");
        var model = ModelFactory.Create(folder.Config, numLabels ?? folder.Config.NumLabels, quantization);
        try
        {
            using var weights = folder.OpenWeights();
            lock (TorchRandomLock.Sync) WeightLoader.Load(model, weights, log);   // a created head draws random weights
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Loads the model in the folder at <paramref name="path"/>.</summary>
    public static SequenceClassifier Load(string path, int? numLabels = null, Action<string>? log = null, QuantizedBase? quantization = null) =>
        Load(CheckpointFolder.Open(path), numLabels, log, quantization);
}
