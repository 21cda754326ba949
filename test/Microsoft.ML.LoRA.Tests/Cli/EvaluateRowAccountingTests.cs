using System.Text.Json;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary>
/// lora evaluate (and predict) account for every row: a label the model was never trained on counts as wrong and is
/// listed, a row without a label is skipped and counted, a file without rows to evaluate is an error, a malformed
/// line is reported with its file and number, and predict leaves no partial --to file behind.
/// </summary>
public class EvaluateRowAccountingTests(TrainedRun run) : IClassFixture<TrainedRun>, IDisposable
{
    readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    static JsonElement Json(CliResult result)
    {
        result.ExitCode.Should().Be(ExitCodes.Success, result.Stderr);
        return JsonDocument.Parse(result.Stdout).RootElement.Clone();
    }

    JsonElement Evaluate(string data) => Json(CliRun.Lora("evaluate", "--model", run.Model, "--data", data, "--json"));

    string Write(string name, params string[] lines)
    {
        var path = _dir.File(name);
        File.WriteAllLines(path, lines);
        return path;
    }

    /// <summary>The validation file's data rows (label TAB text), without its header.</summary>
    string[] ValidationRows => File.ReadAllLines(run.Validation).Skip(1).ToArray();

    [Fact]
    public void Rows_with_a_label_the_model_was_not_trained_on_count_as_wrong_and_are_listed()
    {
        var known = Evaluate(run.Validation);
        var eggs = TextData.SmsSpam(4000, 20).Select(r => $"eggs\t{r.Text.Replace('\t', ' ')}");
        var mixed = Write("mixed.tsv", ValidationRows.Concat(eggs).Prepend("label\ttext").ToArray());

        var report = Evaluate(mixed);

        report.GetProperty("rowsRead").GetInt64().Should().Be(60);
        report.GetProperty("rowsScored").GetInt64().Should().Be(60);
        report.GetProperty("rows").GetInt64().Should().Be(60);
        report.GetProperty("rowsSkipped").GetInt64().Should().Be(0);
        var unseen = report.GetProperty("unseenLabels").EnumerateArray().ToList();
        unseen.Should().ContainSingle();
        unseen[0].GetProperty("label").GetString().Should().Be("eggs");
        unseen[0].GetProperty("rows").GetInt64().Should().Be(20);
        unseen[0].GetProperty("predictedAs").EnumerateObject().Sum(p => p.Value.GetInt64()).Should().Be(20);
        double knownMicro = known.GetProperty("microAccuracy").GetDouble();
        report.GetProperty("microAccuracy").GetDouble().Should().BeApproximately(knownMicro * 40 / 60, 1e-12, "the 20 unseen rows are wrong");
        report.GetProperty("macroAccuracy").GetDouble().Should().BeApproximately(known.GetProperty("macroAccuracy").GetDouble() * 2 / 3, 1e-12,
            "the unseen label is a third class with recall 0");
        var knownLabels = report.GetProperty("knownLabels");
        knownLabels.GetProperty("rows").GetInt64().Should().Be(40);
        knownLabels.GetProperty("microAccuracy").GetDouble().Should().Be(knownMicro, "ML.NET's figure on the known labels is kept");
        report.GetProperty("confusionMatrix").GetRawText().Should().Be(known.GetProperty("confusionMatrix").GetRawText());
        report.GetProperty("logLoss").GetDouble().Should().Be(known.GetProperty("logLoss").GetDouble());

        var printed = CliRun.Lora("evaluate", "--model", run.Model, "--data", mixed);
        printed.ExitCode.Should().Be(0, printed.Stderr);
        printed.Stdout.Should().Contain("(60 rows)").And.Contain("eggs").And.Contain("counted wrong").And.Contain("(known labels)");
    }

    [Fact]
    public void On_clean_data_every_row_counts_and_the_accuracies_are_mlnets()
    {
        var report = Evaluate(run.Validation);

        report.GetProperty("rowsRead").GetInt64().Should().Be(40);
        report.GetProperty("rowsScored").GetInt64().Should().Be(40);
        report.GetProperty("skipped").GetArrayLength().Should().Be(0);
        report.GetProperty("unseenLabels").GetArrayLength().Should().Be(0);
        report.GetProperty("knownLabels").GetProperty("rows").GetInt64().Should().Be(40);
        report.GetProperty("microAccuracy").GetDouble().Should().Be(report.GetProperty("knownLabels").GetProperty("microAccuracy").GetDouble());
        report.GetProperty("macroAccuracy").GetDouble().Should().Be(report.GetProperty("knownLabels").GetProperty("macroAccuracy").GetDouble());
    }

    [Fact]
    public void Rows_without_a_label_are_skipped_counted_and_left_out_of_the_accuracy()
    {
        var known = Evaluate(run.Validation);
        var rows = ValidationRows.ToList();
        rows.Insert(5, "\tno label on this one");
        rows.Insert(17, " \tnor on this one");
        rows.Add("\tor this");
        var data = Write("unlabelled.tsv", rows.Prepend("label\ttext").ToArray());

        var report = Evaluate(data);

        report.GetProperty("rowsRead").GetInt64().Should().Be(43);
        report.GetProperty("rowsScored").GetInt64().Should().Be(40);
        report.GetProperty("rowsSkipped").GetInt64().Should().Be(3);
        var skipped = report.GetProperty("skipped").EnumerateArray().Single();
        skipped.GetProperty("reason").GetString().Should().Be("no label");
        skipped.GetProperty("rows").GetInt64().Should().Be(3);
        report.GetProperty("microAccuracy").GetDouble().Should().Be(known.GetProperty("microAccuracy").GetDouble());
        CliRun.Lora("evaluate", "--model", run.Model, "--data", data).Stdout.Should().Contain("Skipped: no label");
    }

    [Fact]
    public void Rows_with_an_empty_text_are_scored_and_counted()
    {
        var rows = ValidationRows.ToList();
        rows.Add("ham\t");
        rows.Add("spam");
        var data = Write("empty-text.tsv", rows.Prepend("label\ttext").ToArray());

        var report = Evaluate(data);

        report.GetProperty("rowsRead").GetInt64().Should().Be(42);
        report.GetProperty("rowsScored").GetInt64().Should().Be(42);
        report.GetProperty("emptyTextRows").GetInt64().Should().Be(2);
        var predicted = CliRun.Lora("predict", "--model", run.Model, "--data", data);
        predicted.ExitCode.Should().Be(0, predicted.Stderr);
        predicted.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Should().HaveCount(43, "a header and one line per row");
        predicted.Stderr.Should().Contain("2 of the 42 rows have an empty text");
    }

    [Fact]
    public void Rows_that_start_like_comments_are_evaluated_and_predicted()
    {
        var rows = ValidationRows.ToList();
        rows.Add("ham\t// not a comment");
        var data = Write("comment-like.tsv", rows.Prepend("label\ttext").Append("//spam\tstill a row").ToArray());

        Evaluate(data).GetProperty("rowsRead").GetInt64().Should().Be(42);
        CliRun.Lora("predict", "--model", run.Model, "--data", data).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Should().HaveCount(43);
    }

    [Fact]
    public void A_file_without_rows_to_evaluate_is_an_error_that_names_it()
    {
        var headerOnly = Write("header-only.tsv", "label\ttext");
        var unlabelled = Write("unlabelled.tsv", "label\ttext", "\tone", "\ttwo");

        CliRun.Lora("evaluate", "--model", run.Model, "--data", headerOnly).ShouldFailCleanly(ExitCodes.InvalidInput, headerOnly, "no data rows");
        CliRun.Lora("evaluate", "--model", run.Model, "--data", headerOnly, "--json").ShouldFailCleanly(ExitCodes.InvalidInput, headerOnly, "no data rows");
        CliRun.Lora("evaluate", "--model", run.Model, "--data", run.Validation, "--validation", headerOnly)
            .ShouldFailCleanly(ExitCodes.InvalidInput, headerOnly, "no data rows");
        CliRun.Lora("evaluate", "--model", run.Model, "--data", unlabelled).ShouldFailCleanly(ExitCodes.InvalidInput, unlabelled, "none of its 2 rows has a label");
    }

    [Fact]
    public void Train_on_a_header_only_file_says_it_has_no_data_rows()
    {
        var headerOnly = Write("header-only.tsv", "label\ttext");

        var result = CliRun.Lora("train", "--model", run.BaseModel, "--data", headerOnly, "--output", _dir.File("run"));

        result.ExitCode.Should().Be(ExitCodes.InvalidInput, result.Stderr);
        result.StderrLines.Should().ContainSingle(l => l.StartsWith("lora: error: ")).Which.Should().Contain(headerOnly).And.Contain("no data rows");
        result.Stderr.Should().NotContain("classes");
        var validation = CliRun.Lora("train", "--model", run.BaseModel, "--data", run.Validation, "--validation", headerOnly, "--output", _dir.File("run2"));
        validation.ExitCode.Should().Be(ExitCodes.InvalidInput, validation.Stderr);
        validation.Stderr.Should().Contain(headerOnly).And.Contain("no data rows");
    }

    [Fact]
    public void Predict_on_a_header_only_file_writes_the_header_alone_and_says_so()
    {
        var headerOnly = Write("header-only.tsv", "label\ttext");

        var result = CliRun.Lora("predict", "--model", run.Model, "--data", headerOnly);

        result.ExitCode.Should().Be(ExitCodes.Success, result.Stderr);
        result.Stdout.Should().Be("row\tpredicted\tp_ham\tp_spam" + Environment.NewLine);
        result.Stderr.Should().Contain("no data rows");
    }

    [Fact]
    public void A_malformed_json_line_fails_evaluate_and_predict_with_its_file_and_line()
    {
        var lines = TextData.SmsSpam(3000, 5).Select(r => JsonSerializer.Serialize(new { label = r.Label, text = r.Text })).ToList();
        lines.Insert(3, "{\"label\": \"ham\", \"text\": oops}");
        var data = Write("bad.jsonl", lines.ToArray());

        CliRun.Lora("evaluate", "--model", run.Model, "--data", data).ShouldFailCleanly(ExitCodes.InvalidInput, data, "line 4");
        CliRun.Lora("evaluate", "--model", run.Model, "--data", data, "--json").ShouldFailCleanly(ExitCodes.InvalidInput, data, "line 4");
        var predict = CliRun.Lora("predict", "--model", run.Model, "--data", data, "--to", _dir.File("new.tsv"));
        predict.ShouldFailCleanly(ExitCodes.InvalidInput, data, "line 4");
        File.Exists(_dir.File("new.tsv")).Should().BeFalse("no partial or header-only file is left behind");
        Directory.GetFiles(_dir.Path).Should().NotContain(f => f.EndsWith(".tmp"), "the temporary file is removed");
    }

    [Fact]
    public void Predict_replaces_its_to_file_only_when_every_row_was_written()
    {
        var bad = Write("bad.jsonl", "{\"text\": \"fine\"}", "{\"text\": nope}");
        var to = Write("predictions.tsv", "earlier predictions");

        CliRun.Lora("predict", "--model", run.Model, "--data", bad, "--to", to).ShouldFailCleanly(ExitCodes.InvalidInput, bad, "line 2");
        File.ReadAllText(to).Should().Be("earlier predictions" + Environment.NewLine);

        var ok = CliRun.Lora("predict", "--model", run.Model, "--data", run.Validation, "--to", to);
        ok.ExitCode.Should().Be(0, ok.Stderr);
        File.ReadAllLines(to).Should().HaveCount(41);
    }

    [Fact]
    public void A_malformed_csv_fails_with_exit_4_its_file_and_the_reason()
    {
        var data = Write("bad.csv", "label,text", "ham,\"never closed", "spam,next");

        CliRun.Lora("evaluate", "--model", run.Model, "--data", data).ShouldFailCleanly(ExitCodes.InvalidInput, data, "quoted field");
        CliRun.Lora("predict", "--model", run.Model, "--data", data, "--to", _dir.File("p.tsv")).ShouldFailCleanly(ExitCodes.InvalidInput, data, "quoted field");
        CliRun.Lora("train", "--model", run.BaseModel, "--data", data, "--output", _dir.File("run")).StderrLines
            .Should().Contain(l => l.StartsWith("lora: error: ") && l.Contains(data) && l.Contains("quoted field"));
    }
}
