using System.CommandLine;
using Microsoft.ML;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Persistence;

namespace Microsoft.ML.LoRA.Cli.Options;

// ML.NET has a namespace Microsoft.ML.Command, which would hide System.CommandLine.Command here.
using Command = System.CommandLine.Command;

/// <summary>
/// The options of commands that use a saved model (evaluate, predict, merge, export-adapter): --model FILE (a
/// model.zip written by train) and --base-model DIR (where its base checkpoint is now, if it moved).
/// </summary>
internal sealed class SavedModelOptionSet
{
    public Option<string> Model { get; } = new("--model", "-m")
    {
        Description = "Saved model: the model.zip a 'lora train' run folder holds",
        HelpName = "FILE",
        Required = true,
    };

    public Option<string> BaseModel { get; } = new("--base-model")
    {
        Description = "Where the model's base checkpoint is now, if it moved since training (its weights must be unchanged)",
        HelpName = "DIR",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Model);
        command.Options.Add(BaseModel);
    }

    /// <summary>Loads the saved pipeline.</summary>
    public ITransformer Load(MLContext ml, ParseResult parseResult, out DataViewSchema inputSchema) =>
        ml.Model.LoadWithLora(parseResult.GetValue(Model)!, out inputSchema, new LoraLoadOptions { BaseModelPath = parseResult.GetValue(BaseModel) });

    /// <summary>The LoRA stage of a loaded pipeline.</summary>
    public static LoraTextClassificationTransformer LoraStage(ITransformer model) =>
        PipelineStages.LoraStage(model);

    /// <summary>Frees the native memory of a loaded pipeline's LoRA stage.</summary>
    public static void Dispose(ITransformer model) => LoraStage(model).Dispose();
}
