using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Cli.Options;
using Microsoft.ML.LoRA.Data;

namespace Microsoft.ML.LoRA.Cli.Commands;

// ML.NET has a namespace Microsoft.ML.Command, which would hide System.CommandLine.Command here.
using Command = System.CommandLine.Command;

/// <summary>
/// <c>lora predict --model RUN_DIR/model.zip --data FILE</c>: the predicted label and class probabilities of every
/// row, streamed as TSV (row, predicted label, one probability column per class) or, with --json, JSON Lines.
/// Probabilities are written with round-trip precision, so two runs can be compared exactly.
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

    sealed class Prediction
    {
        public string PredictedLabel { get; set; } = "";
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, CliContext context, CancellationToken cancellationToken)
    {
        var ml = new MLContext(seed: parseResult.GetValue(_data.Seed));
        var model = _model.Load(ml, parseResult, out _);
        try
        {
            var rows = _data.Read(parseResult).Load(ml).Train;
            // The pipeline starts by mapping the label to a key; unlabelled rows get a stand-in label it maps to "missing".
            var input = ml.Transforms.CopyColumns(LabeledTextColumns.Label, LabeledTextColumns.Text).Fit(rows).Transform(rows);
            var scored = model.Transform(input);
            VBuffer<ReadOnlyMemory<char>> slots = default;
            scored.Schema["Score"].GetSlotNames(ref slots);
            var classes = slots.DenseValues().Select(s => s.ToString()).ToArray();
            bool json = parseResult.GetValue(_output.Json);
            var path = parseResult.GetValue(_to);
            using var file = path is null ? null : new StreamWriter(path);
            var writer = file ?? context.Out;
            if (!json) writer.WriteLine(string.Join('\t', new[] { "row", "predicted" }.Concat(classes.Select(c => "p_" + c))));
            long row = 0;
            foreach (var p in ml.Data.CreateEnumerable<Prediction>(scored, reuseRowObject: true))
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (json)
                {
                    var probabilities = classes.Select((c, i) => (c, p.Score[i])).ToDictionary(x => x.c, x => x.Item2);
                    writer.WriteLine(JsonSerializer.Serialize(new { row, predicted = p.PredictedLabel, probabilities }));
                }
                else
                {
                    writer.WriteLine(string.Join('\t', new[] { row.ToString(CultureInfo.InvariantCulture), p.PredictedLabel }
                        .Concat(p.Score.Select(s => s.ToString("R", CultureInfo.InvariantCulture)))));
                }
                row++;
            }
            if (path is not null) context.Error.WriteLine($"Wrote {row:N0} predictions to {path}.");
            return Task.FromResult(ExitCodes.Success);
        }
        finally
        {
            SavedModelOptionSet.Dispose(model);
        }
    }
}
