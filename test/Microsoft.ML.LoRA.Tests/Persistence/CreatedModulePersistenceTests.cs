using System.IO.Compression;
using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Cli;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Persistence;

/// <summary>
/// A masked-LM checkpoint has no pooler: the classifier creates one. The created pooler trains with the head by
/// default, and whether it trains or not it is saved in model.zip, so the same file gives the same predictions in every
/// process (before, a frozen random pooler was drawn again at every load and moved probabilities by about 1e-2).
/// </summary>
public class CreatedModulePersistenceTests(PoolerlessRuns runs) : IClassFixture<PoolerlessRuns>
{
    [Fact]
    public void The_pooler_a_masked_LM_checkpoint_lacks_trains_with_the_head_by_default_and_the_log_says_so()
    {
        runs.Trained.ExitCode.Should().Be(0, runs.Trained.Stderr);
        var log = File.ReadAllText(Path.Combine(runs.TrainedFolder, "log.txt"));
        log.Should().Contain("'bert.pooler' is not in the checkpoint, so it trains with the head");

        var (config, tensors) = Adapter(runs.TrainedFolder);
        config["modules_to_save"]!.AsArray().Select(n => n!.GetValue<string>()).Should().BeEquivalentTo("bert.pooler", "classifier");
        tensors.Should().Contain("base_model.model.bert.pooler.dense.weight").And.Contain("base_model.model.classifier.weight");
    }

    [Fact]
    public void A_pooler_left_out_of_the_modules_to_save_stays_frozen_but_is_still_saved()
    {
        runs.Frozen.ExitCode.Should().Be(0, runs.Frozen.Stderr);
        File.ReadAllText(Path.Combine(runs.FrozenFolder, "log.txt")).Should().Contain("keeps its random weights, which are saved with the model");

        var (config, tensors) = Adapter(runs.FrozenFolder);
        tensors.Should().Contain("base_model.model.bert.pooler.dense.weight", "PEFT and our loader need the random pooler the head was trained on");
        config["modules_to_save"]!.AsArray().Select(n => n!.GetValue<string>()).Should().Contain("bert.pooler");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public Task One_model_file_predicts_identically_in_fresh_processes(bool poolerTrained) =>
        PredictsIdenticallyInFreshProcesses(poolerTrained ? runs.TrainedFolder : runs.FrozenFolder);

    /// <summary>
    /// Head-only and full fine-tuning save other weights than LoRA (the head with the created pooler; every changed
    /// weight): the file alone must give the same predictions in fresh processes and the metrics training reported.
    /// </summary>
    [Theory]
    [InlineData("head")]
    [InlineData("full")]
    public async Task A_head_only_or_full_fit_predicts_identically_in_fresh_processes_and_as_training_scored(string method)
    {
        var folder = runs.MethodFolder(method);
        runs.ByMethod(method).ExitCode.Should().Be(0, runs.ByMethod(method).Stderr);

        await PredictsIdenticallyInFreshProcesses(folder);
        await EvaluateReproducesTraining(folder);
    }

    async Task PredictsIdenticallyInFreshProcesses(string runFolder)
    {
        var model = Path.Combine(runFolder, "model.zip");

        var first = await ProcessRun.Lora("predict", "--model", model, "--data", runs.Test);
        var second = await ProcessRun.Lora("predict", "--model", model, "--data", runs.Test);
        var inProcess = CliRun.Lora("predict", "--model", model, "--data", runs.Test);

        first.ExitCode.Should().Be(0, first.Stderr);
        var expected = Rows(first.Stdout);
        expected.Should().HaveCount(60);
        // A re-drawn pooler moves probabilities by about 1e-2; multi-threaded BLAS may round differently by 1e-6.
        foreach (var other in new[] { second, inProcess })
        {
            var rows = Rows(other.Stdout);
            rows.Select(r => r.Label).Should().Equal(expected.Select(r => r.Label));
            rows.SelectMany(r => r.P).Should().Equal(expected.SelectMany(r => r.P), (a, e) => Math.Abs(a - e) < 1e-4);
        }
    }

    static List<(string Label, double[] P)> Rows(string stdout) => stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)
        .Select(l => l.Split('\t')).Select(f => (f[1], f.Skip(2).Select(v => double.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray()))
        .ToList();

    [Fact]
    public Task Evaluate_in_a_fresh_process_reproduces_the_accuracy_training_reported() => EvaluateReproducesTraining(runs.TrainedFolder);

    /// <summary>
    /// The saved file scored in a fresh process gives the validation metrics training computed on the model in memory:
    /// a weight that trained but was not saved (or was drawn again at load) would change the log-loss.
    /// </summary>
    async Task EvaluateReproducesTraining(string runFolder)
    {
        var trained = JsonNode.Parse(File.ReadAllText(Path.Combine(runFolder, "metrics.json")))!;

        var evaluated = await ProcessRun.Lora("evaluate", "--model", Path.Combine(runFolder, "model.zip"), "--data", runs.Test, "--json");

        evaluated.ExitCode.Should().Be(0, evaluated.Stderr);
        var metrics = JsonNode.Parse(evaluated.Stdout)!;
        metrics["microAccuracy"]!.GetValue<double>().Should().Be(trained["microAccuracy"]!.GetValue<double>());
        metrics["logLoss"]!.GetValue<double>().Should().BeApproximately(trained["logLoss"]!.GetValue<double>(), 1e-5);
    }

    static (JsonObject Config, IReadOnlyList<string> Tensors) Adapter(string runFolder)
    {
        using var zip = ZipFile.OpenRead(Path.Combine(runFolder, "model.zip"));
        using var dir = new TempDir();
        foreach (var entry in zip.Entries.Where(e => e.FullName.StartsWith("adapter/", StringComparison.Ordinal)))
            entry.ExtractToFile(Path.Combine(dir.Path, entry.Name));
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, "adapter_config.json")))!;
        var tensors = SafeTensorsFile.Open(Path.Combine(dir.Path, "adapter_model.safetensors")).Entries.Select(e => e.Name).ToList();
        return (config, tensors);
    }
}

/// <summary>
/// Short runs of <c>lora train</c> on the pre-trained masked-LM BERT: LoRA with the pooler trained (default) and frozen,
/// head-only and full fine-tuning.
/// </summary>
public sealed class PoolerlessRuns : IDisposable
{
    readonly TempDir _dir = new();
    public string Test { get; }
    public string TrainedFolder => Path.Combine(_dir.Path, "trained");
    public string FrozenFolder => Path.Combine(_dir.Path, "frozen");
    public string MethodFolder(string method) => Path.Combine(_dir.Path, method);
    public CliResult Trained { get; }
    public CliResult Frozen { get; }
    public CliResult Head { get; }
    public CliResult Full { get; }

    public CliResult ByMethod(string method) => method switch
    {
        "head" => Head,
        "full" => Full,
        _ => throw new ArgumentOutOfRangeException(nameof(method), method, "head or full"),
    };

    public PoolerlessRuns()
    {
        string Write(string name, IEnumerable<TextData.LabeledText> rows) => TextData.WriteTsv(Path.Combine(_dir.Path, name), rows);
        var train = Write("train.tsv", TextData.Balanced(TextData.SmsSpam(0, 2000), 40));
        Test = Write("test.tsv", TextData.Balanced(TextData.SmsSpam(3000, 2000), 30));
        string[] Args(string output, string learningRate, params string[] extra) => new[]
        {
            "train", "--model", SharedData.PretrainedBert, "--data", train, "--validation", Test, "--epochs", "1",
            "--max-length", "32", "--learning-rate", learningRate, "--seed", "5", "--output", output, "--json",
        }.Concat(extra).ToArray();
        Trained = CliRun.Lora(Args(TrainedFolder, "2e-3"));
        Frozen = CliRun.Lora(Args(FrozenFolder, "2e-3", "--modules-to-save", "classifier"));
        Head = CliRun.Lora(Args(MethodFolder("head"), "2e-3", "--method", "head"));
        Full = CliRun.Lora(Args(MethodFolder("full"), "1e-4", "--method", "full"));
    }

    public void Dispose() => _dir.Dispose();
}
