using System.Text.Json;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary>
/// lora train writes a complete run folder; evaluate and predict, in separate processes, reproduce its metrics and
/// predictions exactly; merge and export-adapter write loadable folders.
/// </summary>
public class TrainRunTests(TrainedRun run) : IClassFixture<TrainedRun>
{
    [Fact]
    public void Train_writes_everything_needed_to_reproduce_and_inspect_the_run()
    {
        run.Result.ExitCode.Should().Be(ExitCodes.Success, run.Result.Stderr);
        foreach (var file in new[] { "model.zip", "options.json", "metrics.json", "history.json", "training.png", "log.txt" })
            File.Exists(Path.Combine(run.Folder, file)).Should().BeTrue(file);
        using var options = JsonDocument.Parse(File.ReadAllText(Path.Combine(run.Folder, "options.json")));
        options.RootElement.GetProperty("task").GetString().Should().Be("classification");
        options.RootElement.GetProperty("epochs").GetInt32().Should().Be(2);
        options.RootElement.GetProperty("seed").GetInt32().Should().Be(7);
        options.RootElement.GetProperty("lora").GetProperty("rank").GetInt32().Should().Be(4);
        options.RootElement.GetProperty("precision").GetString().Should().Be("Float32", "fp32 is the default precision");
        options.RootElement.GetProperty("gradientCheckpointing").GetBoolean().Should().BeFalse();
        File.ReadAllBytes(Path.Combine(run.Folder, "training.png"))[..4].Should().Equal(0x89, (byte)'P', (byte)'N', (byte)'G');
        File.ReadAllText(Path.Combine(run.Folder, "log.txt")).Should().Contain("LoRA on").And.Contain("Epoch 2/2").And.Contain("peak memory");
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(run.Folder, "metrics.json")));
        var training = metrics.RootElement.GetProperty("training");
        training.GetProperty("method").GetString().Should().Be("lora");
        training.GetProperty("trainableParameters").GetInt64().Should().BeInRange(1, training.GetProperty("totalParameters").GetInt64() / 10);
        training.GetProperty("trainingSeconds").GetDouble().Should().BeGreaterThan(0);
        training.GetProperty("peakRssMiB").GetDouble().Should().BeGreaterThan(100, "libtorch alone takes more");
        using var stdout = JsonDocument.Parse(run.Result.Stdout);
        stdout.RootElement.GetProperty("metrics").GetProperty("rows").GetInt64().Should().Be(40);
        stdout.RootElement.GetProperty("history").GetProperty("epochs").GetArrayLength().Should().Be(2);
    }

    [Fact]
    public async Task Evaluate_in_a_separate_process_reproduces_the_training_metrics()
    {
        var result = await ProcessRun.Lora("evaluate", "--model", run.Model, "--data", run.Validation, "--json");

        result.ExitCode.Should().Be(0, result.Stderr);
        using var evaluated = JsonDocument.Parse(result.Stdout);
        using var trained = JsonDocument.Parse(File.ReadAllText(Path.Combine(run.Folder, "metrics.json")));
        foreach (var metric in new[] { "microAccuracy", "macroAccuracy", "logLoss", "logLossReduction", "rows" })
            evaluated.RootElement.GetProperty(metric).GetRawText().Should().Be(trained.RootElement.GetProperty(metric).GetRawText(), metric);
        evaluated.RootElement.GetProperty("confusionMatrix").GetRawText().Should().Be(trained.RootElement.GetProperty("confusionMatrix").GetRawText());
    }

    [Fact]
    public async Task Predict_in_a_separate_process_gives_the_same_predictions_as_in_process()
    {
        var inProcess = CliRun.Lora("predict", "--model", run.Model, "--data", run.Validation);
        var separate = await ProcessRun.Lora("predict", "--model", run.Model, "--data", run.Validation);

        separate.ExitCode.Should().Be(0, separate.Stderr);
        separate.Stdout.Should().Be(inProcess.Stdout);
        var lines = separate.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines[0].Should().Be("row\tpredicted\tp_ham\tp_spam");
        lines.Should().HaveCount(41);
        lines.Skip(1).Should().OnlyContain(l => l.Split('\t')[1] == "ham" || l.Split('\t')[1] == "spam");
    }

    [Fact]
    public void Predict_json_lines_carry_every_class_probability()
    {
        var result = CliRun.Lora("predict", "--model", run.Model, "--data", run.Validation, "--json");

        var rows = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l)).ToList();
        rows.Should().HaveCount(40);
        foreach (var row in rows)
        {
            var p = row.RootElement.GetProperty("probabilities");
            (p.GetProperty("ham").GetDouble() + p.GetProperty("spam").GetDouble()).Should().BeApproximately(1, 1e-5);
        }
    }

    [Fact]
    public void Predict_scores_the_saved_fp32_model_with_int8_products_when_asked()
    {
        static string[][] Rows(string stdout) => stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Split('\t')).ToArray();
        var fp32 = Rows(CliRun.Lora("predict", "--model", run.Model, "--data", run.Validation).Stdout);
        var result = CliRun.Lora("predict", "--model", run.Model, "--data", run.Validation, "--precision", "int8");

        result.ExitCode.Should().Be(0, result.Stderr);
        var int8 = Rows(result.Stdout);
        int8.Should().HaveCount(fp32.Length);
        int8.Select(r => r[2]).Should().NotEqual(fp32.Select(r => r[2]), "the probabilities come from int8 products");
        for (int i = 0; i < fp32.Length; i++)
            double.Parse(int8[i][2], System.Globalization.CultureInfo.InvariantCulture).Should()
                .BeApproximately(double.Parse(fp32[i][2], System.Globalization.CultureInfo.InvariantCulture), 0.05, $"row {i}");
        CliRun.Lora("predict", "--model", run.Model, "--data", run.Validation, "--precision", "int4").ShouldFailCleanly(ExitCodes.Usage, "int4");
    }

    [Fact]
    public void Merge_writes_a_checkpoint_that_loads_with_its_head_and_no_adapter()
    {
        using var dir = new TempDir();
        var result = CliRun.Lora("merge", "--model", run.Model, "--output", dir.Path);

        result.ExitCode.Should().Be(0, result.Stderr);
        var config = TransformerConfig.Load(Path.Combine(dir.Path, "config.json"));
        config.Labels.Should().Equal("ham", "spam");
        var messages = new List<string>();
        using var model = PretrainedModel.Load(dir.Path, log: messages.Add);
        messages.Should().NotContain(m => m.Contains("created"), "the trained head is in the merged checkpoint");
        LoraInjector.LinearLayers(model).Values.Should().OnlyContain(l => !l.HasAdapter);
        File.Exists(Path.Combine(dir.Path, "vocab.txt")).Should().BeTrue("the tokenizer travels with the checkpoint");
    }

    [Fact]
    public void Export_adapter_writes_a_peft_folder_the_base_model_accepts()
    {
        using var dir = new TempDir();
        var result = CliRun.Lora("export-adapter", "--model", run.Model, "--output", dir.Path);

        result.ExitCode.Should().Be(0, result.Stderr);
        using var model = PretrainedModel.Load(run.BaseModel, numLabels: 2);
        var info = PeftAdapter.Load(model, dir.Path);
        info.Rank.Should().Be(4);
        info.AdaptedModules.Should().HaveCount(12, "the 6 linear layers of each of the 2 layers, the default targets");
    }

    [Fact]
    public void Bad_arguments_fail_with_one_line_and_a_non_zero_exit()
    {
        CliRun.Lora("train", "--model", run.BaseModel, "--data", "/no/such/file.tsv").ShouldFailCleanly(ExitCodes.NotFound, "/no/such/file.tsv");
        CliRun.Lora("train", "--model", run.BaseModel, "--data", run.Validation, "--text-column", "body").ShouldFailCleanly(ExitCodes.Usage, "body", "text");
        CliRun.Lora("train", "--model", run.BaseModel, "--data", run.Validation, "--separator", "colon").ShouldFailCleanly(ExitCodes.Usage, "colon");
        CliRun.Lora("train", "--model", run.BaseModel, "--data", run.Validation, "--epochs", "0").ShouldFailCleanly(ExitCodes.Usage, "--epochs");
        CliRun.Lora("train", "--model", run.BaseModel, "--data", run.Validation, "--precision", "fp16").ShouldFailCleanly(ExitCodes.Usage, "fp16");
        CliRun.Lora("evaluate", "--model", run.Validation, "--data", run.Validation).ShouldFailCleanly(ExitCodes.InvalidInput, "not a LoRA model file");
        CliRun.Lora("predict", "--model", "/no/model.zip", "--data", run.Validation).ShouldFailCleanly(ExitCodes.NotFound, "/no/model.zip");
        CliRun.Lora("merge", "--model", run.Model).ShouldFailCleanly(ExitCodes.Usage, "--output");
    }

    [Fact]
    public void Init_model_writes_a_random_checkpoint_with_tokenizer_files()
    {
        using var dir = new TempDir();
        var result = CliRun.Lora("init-model", "--config", SharedData.Fixture("distilbert") + "/config.json", "--tokenizer", SharedData.BertTokenizer, "--output", dir.Path);

        result.ExitCode.Should().Be(0, result.Stderr);
        var folder = CheckpointFolder.Open(dir.Path);
        folder.Config.ModelType.Should().Be("distilbert");
        File.Exists(Path.Combine(dir.Path, "vocab.txt")).Should().BeTrue();
        using var weights = folder.OpenWeights();
        weights.Names.Should().Contain("distilbert.transformer.layer.1.ffn.lin2.weight").And.NotContain("classifier.weight");
    }
}

/// <summary>One `lora train` run on a small SMS-spam sample, shared by the tests of a class.</summary>
public sealed class TrainedRun : IDisposable
{
    readonly TempDir _dir = new();
    public string BaseModel { get; }
    public string Validation { get; }
    public string Folder { get; }
    public string Model => Path.Combine(Folder, "model.zip");
    public CliResult Result { get; }

    public TrainedRun()
    {
        BaseModel = TinyCheckpoint.Bert(Path.Combine(_dir.Path, "bert"), hidden: 32, seed: 3);
        string Write(string name, IEnumerable<TextData.LabeledText> rows) => TextData.WriteTsv(Path.Combine(_dir.Path, name), rows);
        var train = Write("train.tsv", TextData.Balanced(TextData.SmsSpam(0, 2000), 60));
        Validation = Write("validation.tsv", TextData.Balanced(TextData.SmsSpam(3000, 2000), 20));
        Folder = Path.Combine(_dir.Path, "run");
        Result = CliRun.Lora("train", "--model", BaseModel, "--data", train, "--validation", Validation, "--epochs", "2",
            "--learning-rate", "5e-3", "--max-length", "48", "--rank", "4", "--alpha", "8", "--seed", "7", "--output", Folder, "--json");
    }

    public void Dispose() => _dir.Dispose();
}
