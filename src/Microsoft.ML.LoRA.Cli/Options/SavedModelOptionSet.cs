using System.CommandLine;
using Microsoft.ML;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Persistence;

namespace Microsoft.ML.LoRA.Cli.Options;

// ML.NET has a namespace Microsoft.ML.Command, which would hide System.CommandLine.Command here.
using Command = System.CommandLine.Command;

/// <summary>
/// The options of commands that use a saved model (evaluate, predict, merge, export-adapter): --model FILE (a
/// model.zip written by train) and --base-model DIR (where its base checkpoint is now, if it moved); commands that
/// score add --precision (how the loaded model multiplies, when not as saved).
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

    public Option<string?> Precision { get; } = new Option<string?>("--precision")
    {
        Description = "Number type of the loaded model's matrix products when it scores: fp32, bf16, auto (bf16 where " +
                      "the CPU has it) or int8 (int8 weights and activations, 1.2-1.6x faster on x86-64 for base-size models, a small accuracy cost) " +
                      "[default: as saved]",
        HelpName = "fp32|bf16|auto|int8",
    }.AcceptOnlyFromAmong("fp32", "bf16", "auto", "int8");

    bool _scores;

    /// <summary>Adds the options to <paramref name="command"/>; with <paramref name="scores"/> also --precision.</summary>
    public void AddTo(Command command, bool scores = false)
    {
        command.Options.Add(Model);
        command.Options.Add(BaseModel);
        if (scores) command.Options.Add(Precision);
        _scores = scores;
    }

    /// <summary>Loads the saved pipeline.</summary>
    public ITransformer Load(MLContext ml, ParseResult parseResult, out DataViewSchema inputSchema) =>
        ml.Model.LoadWithLora(parseResult.GetValue(Model)!, out inputSchema, new LoraLoadOptions
        {
            BaseModelPath = parseResult.GetValue(BaseModel),
            ScoringPrecision = _scores && parseResult.GetValue(Precision) is { } word ? TrainingOptionSet.ParsePrecision(word) : null,
        });

    /// <summary>The LoRA stage of a loaded pipeline.</summary>
    public static LoraTextClassificationTransformer LoraStage(ITransformer model) =>
        PipelineStages.LoraStage(model);

    /// <summary>Frees the native memory of a loaded pipeline's LoRA stage.</summary>
    public static void Dispose(ITransformer model) => LoraStage(model).Dispose();
}
