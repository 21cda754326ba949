using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Cli.Options;
using Microsoft.ML.LoRA.Data;
using Microsoft.ML.LoRA.MLNet;

namespace Microsoft.ML.LoRA.Cli.Commands;

// ML.NET has a namespace Microsoft.ML.Command, which would hide System.CommandLine.Command here.
using Command = System.CommandLine.Command;

/// <summary>
/// <c>lora predict --model RUN_DIR/model.zip --data FILE</c>: the predicted label and class probabilities of every
/// row, streamed as TSV (row, predicted label, one probability column per class) or, with --json, JSON Lines.
/// A regression model (train --task regression) writes its predicted value instead (row, score).
/// Probabilities are written with round-trip precision, so two runs can be compared exactly. A file with no data rows
/// (a header only) gives no predictions (the TSV header alone) and exit 0; --to FILE is written only when every row
/// was, so a failure leaves no partial file. Rows with an empty text are scored and counted on stderr.
/// </summary>
internal sealed class PredictCommand : CliCommand
{
    readonly SavedModelOptionSet _model = new();
    readonly DataOptionSet _data = new();
    readonly OutputOptionSet _output = new();
    readonly Option<string> _to = new("--to")
    {
        Description = "Write the predictions to this file instead of stdout",
        HelpName = "FILE",
    };

    public override string Name => "predict";

    public override string Description =>
        "Predict the label of every row of a text file with a saved model: TSV (row, label, one probability per class) " +
        "or JSON Lines with --json. Rows stream through; the file may be any size.";

    protected override void Configure(Command command)
    {
        _model.AddTo(command, scores: true);
        _data.AddTo(command, withLabel: false, withValidation: false);
        _output.AddTo(command, withOutputFolder: false);
        command.Options.Add(_to);
    }

    class Prediction
    {
        public string Text { get; set; } = "";
        public string PredictedLabel { get; set; } = "";
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    sealed class PairPrediction : Prediction
    {
        public string TextPair { get; set; } = "";
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, CliContext context, CancellationToken cancellationToken)
    {
        var ml = new MLContext(seed: parseResult.GetValue(_data.Seed));
        var model = _model.Load(ml, parseResult, out _);
        try
        {
            var loaded = _data.Read(parseResult).Load(ml, requireRows: false);
            var rows = loaded.Train;
            // The pipeline starts by mapping the label to a key; unlabelled rows get a stand-in label it maps to "missing".
            var input = ml.Transforms.CopyColumns(LabeledTextColumns.Label, LabeledTextColumns.Text).Fit(rows).Transform(rows);
            var scored = model.Transform(input);
            bool regression = PipelineStages.LoraStage(model).Info.Task == ClassifierTask.Regression;
            VBuffer<ReadOnlyMemory<char>> slots = default;
            if (!regression) scored.Schema["Score"].GetSlotNames(ref slots);
            var classes = slots.DenseValues().Select(s => s.ToString()).ToArray();
            bool json = parseResult.GetValue(_output.Json);
            var path = parseResult.GetValue(_to);
            var file = loaded.Source.File.Path;
            long written, emptyTexts;
            try
            {
                Func<TextWriter, (long, long)> write = regression
                    ? writer => WriteScores(ml, scored, json, writer, cancellationToken)
                    : writer => Write(ml, scored, classes, json, writer, cancellationToken);
                (written, emptyTexts) = path is null ? write(context.Out) : WriteFile(path, write);
            }
            catch (Exception e) when ((ErrorMapping.NameTextLoaderFailure(e, file)
                ?? ErrorMapping.NameNonFiniteScore(e, parseResult.GetValue(_model.Model)!, file,
                    path is null ? "The predictions written to standard output stop before that row." : $"{path} was left as it was.")) is { } named)
            {
                throw named;
            }
            if (written == 0) context.Error.WriteLine($"{file} has no data rows; no predictions were written.");
            else if (path is not null) context.Error.WriteLine($"Wrote {written:N0} predictions to {path}.");
            if (emptyTexts > 0)
                context.Error.WriteLine($"{emptyTexts:N0} of the {written:N0} rows have an empty text; their predictions are the model's answer to an empty input.");
            return Task.FromResult(ExitCodes.Success);
        }
        finally
        {
            SavedModelOptionSet.Dispose(model);
        }
    }

    /// <summary>Writes one line per row (after the TSV header); returns the rows written and how many had an empty text.</summary>
    static (long Rows, long EmptyTexts) Write(MLContext ml, IDataView scored, string[] classes, bool json, TextWriter writer, CancellationToken cancellationToken)
    {
        if (!json) writer.WriteLine(string.Join('\t', new[] { "row", "predicted" }.Concat(classes.Select(c => "p_" + c))));
        bool pair = scored.Schema.GetColumnOrNull(LabeledTextColumns.TextPair) is not null;
        var rows = pair
            ? ml.Data.CreateEnumerable<PairPrediction>(scored, reuseRowObject: true)
            : ml.Data.CreateEnumerable<Prediction>(scored, reuseRowObject: true);
        return WriteLines(rows, p => p is PairPrediction q ? q.TextPair : null, p => p.Text, (p, row) => json
            ? JsonSerializer.Serialize(new { row, predicted = p.PredictedLabel, probabilities = classes.Select((c, i) => (c, p.Score[i])).ToDictionary(x => x.c, x => x.Item2) })
            : string.Join('\t', new[] { row.ToString(CultureInfo.InvariantCulture), p.PredictedLabel }.Concat(p.Score.Select(s => s.ToString("R", CultureInfo.InvariantCulture)))),
            writer, cancellationToken);
    }

    /// <summary>
    /// The loop both writers share: one line per row from <paramref name="line"/> (given the row and its index), counting
    /// the rows and those whose text (or text pair) is empty; returns both counts.
    /// </summary>
    static (long Rows, long EmptyTexts) WriteLines<T>(IEnumerable<T> rows, Func<T, string?> pairText, Func<T, string> text, Func<T, long, string> line,
        TextWriter writer, CancellationToken cancellationToken)
    {
        long row = 0, empty = 0;
        foreach (var p in rows)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (string.IsNullOrWhiteSpace(text(p)) || (pairText(p) is { } pair && string.IsNullOrWhiteSpace(pair))) empty++;
            writer.WriteLine(line(p, row));
            row++;
        }
        writer.Flush();
        return (row, empty);
    }

    class ScorePrediction
    {
        public string Text { get; set; } = "";
        public float Score { get; set; }
    }

    sealed class PairScorePrediction : ScorePrediction
    {
        public string TextPair { get; set; } = "";
    }

    /// <summary>A regression model's predictions: one line per row (after the TSV header "row, score"); returns the rows written and how many had an empty text.</summary>
    static (long Rows, long EmptyTexts) WriteScores(MLContext ml, IDataView scored, bool json, TextWriter writer, CancellationToken cancellationToken)
    {
        if (!json) writer.WriteLine("row\tscore");
        bool pair = scored.Schema.GetColumnOrNull(LabeledTextColumns.TextPair) is not null;
        var rows = pair
            ? ml.Data.CreateEnumerable<PairScorePrediction>(scored, reuseRowObject: true)
            : ml.Data.CreateEnumerable<ScorePrediction>(scored, reuseRowObject: true);
        return WriteLines(rows, p => p is PairScorePrediction q ? q.TextPair : null, p => p.Text, (p, row) => json
            ? JsonSerializer.Serialize(new { row, score = p.Score })
            : $"{row.ToString(CultureInfo.InvariantCulture)}\t{p.Score.ToString("R", CultureInfo.InvariantCulture)}",
            writer, cancellationToken);
    }

    /// <summary>
    /// Writes <paramref name="path"/> through a temporary file in the same folder, moved over it only when every row was
    /// written: a failure (a malformed line, Ctrl+C) leaves no partial file and an earlier file as it was. A path that
    /// is not a regular file (/dev/stdout, a pipe) is written directly.
    /// </summary>
    static T WriteFile<T>(string path, Func<TextWriter, T> write)
    {
        if (!IsRegularFileOrAbsent(path))
        {
            using var direct = new StreamWriter(path);
            return write(direct);
        }
        T result = default!;
        AtomicFile.Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, new UTF8Encoding(false), bufferSize: 1 << 16, leaveOpen: true);
            result = write(writer);
        });
        return result;
    }

    static bool IsRegularFileOrAbsent(string path)
    {
        var full = Path.GetFullPath(path);
        if (full.StartsWith("/dev/", StringComparison.Ordinal) || full.StartsWith("/proc/", StringComparison.Ordinal)) return false;
        var info = new FileInfo(full);
        return !info.Exists || (info.Attributes & (FileAttributes.Device | FileAttributes.ReparsePoint)) == 0;
    }
}
