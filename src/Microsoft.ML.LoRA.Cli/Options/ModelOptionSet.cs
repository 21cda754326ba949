using System.CommandLine;

namespace Microsoft.ML.LoRA.Cli.Options;

// ML.NET has a namespace Microsoft.ML.Command, which would hide System.CommandLine.Command here.
using Command = System.CommandLine.Command;

/// <summary>
/// The model options shared by the commands that load a checkpoint (logits, train, evaluate, predict, merge):
/// --model (a Hugging Face model folder), --adapter (a PEFT adapter folder) and --labels.
/// </summary>
internal sealed class ModelOptionSet
{
    public Option<string> Model { get; } = new("--model", "-m")
    {
        Description = "Hugging Face model folder: config.json and model.safetensors (or pytorch_model.bin)",
        HelpName = "DIR",
        Required = true,
    };

    public Option<string> Adapter { get; } = new("--adapter")
    {
        Description = "PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) to apply to the model",
        HelpName = "DIR",
    };

    public Option<int?> Labels { get; } = LabelsOption.Create("Number of output classes [default: the config's num_labels]");

    /// <summary>Adds --model and, as asked, --adapter and --labels.</summary>
    public void AddTo(Command command, bool withAdapter = true, bool withLabels = true)
    {
        command.Options.Add(Model);
        if (withAdapter) command.Options.Add(Adapter);
        if (withLabels) command.Options.Add(Labels);
    }
}
