using Microsoft.ML;
using Microsoft.ML.LoRA.Data;

namespace Microsoft.ML.LoRA.Cli.Options;

/// <summary>
/// The data a command was pointed at: the file and how to read it, where validation rows come from (a second file,
/// a stratified share of the first, or nowhere) and the seed.
/// </summary>
internal sealed record DataSelection(
    string DataPath,
    TextDataFileOptions FileOptions,
    string? ValidationPath,
    double? ValidationFraction,
    int Seed)
{
    /// <summary>
    /// Loads the data (streaming) and the validation rows: the --validation file read with the same column options, or
    /// a stratified, seeded split of the data by --validation-fraction, or none.
    /// </summary>
    public LoadedData Load(MLContext mlContext)
    {
        var source = TextDataLoader.Load(mlContext, DataPath, FileOptions);
        if (ValidationPath is not null)
        {
            var validation = TextDataLoader.Load(mlContext, ValidationPath, FileOptions.Clone());
            return new LoadedData(source, source.Data, validation.Data, validation.File);
        }
        if (ValidationFraction is { } fraction)
        {
            if (source.LabelColumn is null)
                throw new ArgumentException("--validation-fraction needs a label column to stratify by.");
            var split = StratifiedSplit.Split(source.Data, fraction, Seed);
            return new LoadedData(source, split.Train, split.Validation, null);
        }
        return new LoadedData(source, source.Data, null, null);
    }
}

/// <summary>Loaded data: the file read, the rows to train on and the validation rows (null without validation).</summary>
internal sealed record LoadedData(LabeledTextData Source, IDataView Train, IDataView? Validation, TextDataFile? ValidationFile);
