using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;

namespace Microsoft.ML.LoRA.Inference;

/// <summary>
/// What loading a PEFT adapter folder would change in a base model, read before loading it: whether its
/// initialisation moved part of the base weight into the adapter (<c>init_lora_weights</c>), and which base
/// parameters its file overwrites (saved modules such as the classification head, trained biases) with the shapes it
/// stores for them. A folder that cannot be read yields an empty preview; <see cref="PeftAdapter.Load"/> then reports
/// what is wrong with it.
/// </summary>
internal sealed class AdapterFolderPreview
{
    AdapterFolderPreview(string? baseChangingInit, IReadOnlyList<(string Entry, string Parameter, long[] Shape)> baseTensors)
    {
        BaseChangingInit = baseChangingInit;
        BaseTensors = baseTensors;
    }

    /// <summary>
    /// The <c>init_lora_weights</c> value when it is one of PEFT's initialisations that leave a changed base weight
    /// behind (PiSSA in either form, OLoRA, LoftQ, CorDA), else null.
    /// </summary>
    public string? BaseChangingInit { get; }

    /// <summary>The stored tensors that are not adapter factors: the entry's key, the parameter it names, its stored shape.</summary>
    public IReadOnlyList<(string Entry, string Parameter, long[] Shape)> BaseTensors { get; }

    /// <summary>Reads the preview of the adapter in <paramref name="folder"/>.</summary>
    /// <exception cref="CheckpointFormatException">adapter_model.safetensors exists but its header is malformed.</exception>
    public static AdapterFolderPreview Read(string folder)
    {
        var configPath = Path.Combine(folder, PeftAdapter.ConfigFile);
        var weightsPath = Path.Combine(folder, PeftAdapter.WeightsFile);
        string? init = File.Exists(configPath) ? InitOf(configPath) : null;
        var tensors = new List<(string, string, long[])>();
        if (File.Exists(weightsPath))
            foreach (var entry in SafeTensorsFile.Open(weightsPath).Entries)
            {
                var key = PeftAdapter.ModelKey(entry.Name);
                // Keys of adapter kinds this library does not read (PEFT's lora_embedding_*) name no base parameter,
                // so the set passes over them, and PeftAdapter.Load refuses them.
                if (!LoraLinear.IsAdapterParameter(key)) tensors.Add((entry.Name, key, entry.Shape));
            }
        return new AdapterFolderPreview(init, tensors);
    }

    static string? InitOf(string configPath)
    {
        try
        {
            if (JsonNode.Parse(File.ReadAllText(configPath)) is not JsonObject config) return null;
            if (config["init_lora_weights"] is not JsonValue value || value.GetValueKind() != JsonValueKind.String) return null;
            var name = value.GetValue<string>();
            return name is "pissa" or "olora" or "loftq" or "corda" || name.StartsWith("pissa_niter_", StringComparison.Ordinal) ? name : null;
        }
        catch (JsonException)
        {
            return null;   // PeftAdapter.Load names the malformed file
        }
    }
}
