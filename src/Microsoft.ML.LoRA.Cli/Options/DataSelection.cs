using Microsoft.ML;
using Microsoft.ML.LoRA.Cli.Infrastructure;
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
    /// <param name="mlContext">The context the data views are made in.</param>
    /// <param name="requireRows">Whether a file without data rows (empty, or a header only) is an error, as it is for
    /// train and evaluate; predict passes false and writes no predictions.</param>
    /// <exception cref="InvalidDataException">A file has no data rows (only when <paramref name="requireRows"/>).</exception>
    public LoadedData Load(MLContext mlContext, bool requireRows = true)
    {
        var source = TextDataLoader.Load(mlContext, DataPath, FileOptions);
        if (requireRows) RequireRows(source);
        if (ValidationPath is not null)
        {
            var validation = TextDataLoader.Load(mlContext, ValidationPath, FileOptions.Clone());
            if (requireRows) RequireRows(validation);
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

    /// <summary>Throws when <paramref name="data"/> has no rows: reads up to the first row only.</summary>
    static void RequireRows(LabeledTextData data)
    {
        using var cursor = data.Data.GetRowCursor(Array.Empty<DataViewSchema.Column>());
        bool any;
        try { any = cursor.MoveNext(); }
        catch (Exception e) when (ErrorMapping.NameTextLoaderFailure(e, data.File.Path) is { } named) { throw named; }
        if (!any)
            throw new InvalidDataException($"{data.File.Path} has no data rows{(data.File.HasHeader && data.File.Format == DataFileFormat.Delimited ? " (only a header)" : "")}.");
    }
}

/// <summary>Loaded data: the file read, the rows to train on and the validation rows (null without validation).</summary>
internal sealed record LoadedData(LabeledTextData Source, IDataView Train, IDataView? Validation, TextDataFile? ValidationFile);
