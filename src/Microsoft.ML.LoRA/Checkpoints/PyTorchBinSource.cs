using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Checkpoints;

/// <summary>Placeholder until the restricted pickle reader lands: refuses pytorch_model.bin with a conversion hint.</summary>
public static class PyTorchBinSource
{
    public static ITensorSource Open(string path) =>
        throw new NotSupportedException(
            $"{path}: pytorch_model.bin files are not read yet. Convert the folder to safetensors in Python: " +
            "AutoModelForSequenceClassification.from_pretrained(folder).save_pretrained(folder, safe_serialization=True)");
}
