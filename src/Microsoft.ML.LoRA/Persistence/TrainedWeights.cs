using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models;
using TorchSharp;

namespace Microsoft.ML.LoRA.Persistence;

/// <summary>
/// The weights a head-only, last-layers or full fit changed, as one safetensors file under Hugging Face names: every
/// trained parameter and every module the base checkpoint lacked. Loaded over the base checkpoint, they give the fitted
/// model back exactly. (LoRA fits store a PEFT adapter instead; see <see cref="Lora.PeftAdapter"/>.)
/// </summary>
public static class TrainedWeights
{
    /// <summary>The file's name inside a saved model's weights folder.</summary>
    public const string FileName = "trained.safetensors";

    /// <summary>Writes the model's parameters beyond its base (<see cref="SequenceClassifier.ParametersBeyondBase"/>) to <paramref name="path"/>.</summary>
    public static void Save(SequenceClassifier model, string path, string method)
    {
        var tensors = model.ParametersBeyondBase().Select(p => KeyValuePair.Create(p.name, (torch.Tensor)p.parameter));
        SafeTensorsWriter.Save(path, tensors, new Dictionary<string, string> { ["format"] = "pt", ["fine_tuning"] = method });
    }

    /// <summary>
    /// Copies the tensors in <paramref name="path"/> over <paramref name="model"/>'s parameters of the same names and
    /// returns those names.
    /// </summary>
    /// <exception cref="CheckpointFormatException">A tensor names no parameter of the model, or has another shape.</exception>
    public static IReadOnlyList<string> Load(SequenceClassifier model, string path) => Load(model, SafeTensorsFile.Open(path));

    /// <summary>
    /// Copies the tensors of <paramref name="file"/> over <paramref name="model"/>'s parameters of the same names, in
    /// the order they are stored (so a file read from a forward-only stream loads too), and returns those names.
    /// </summary>
    /// <exception cref="CheckpointFormatException">A tensor names no parameter of the model, or has another shape.</exception>
    public static IReadOnlyList<string> Load(SequenceClassifier model, SafeTensorsFile file)
    {
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        foreach (var entry in file.Entries)
        {
            if (!parameters.TryGetValue(entry.Name, out var target))
                throw new CheckpointFormatException(file.Path, $"'{entry.Name}' is not a parameter of this {model.Config.ModelType} model");
            if (!entry.Shape.SequenceEqual(target.shape))
                throw new CheckpointFormatException(file.Path, $"'{entry.Name}' has shape [{string.Join(", ", entry.Shape)}], the model expects [{string.Join(", ", target.shape)}]");
        }
        using var _ = torch.no_grad();
        foreach (var entry in file.Entries.OrderBy(e => e.Begin))
        {
            using var value = file.ReadFloat32(entry.Name);
            parameters[entry.Name].copy_(value);
        }
        return file.Entries.Select(e => e.Name).ToList();
    }
}
