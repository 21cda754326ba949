using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Tests.Cli;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Adaptation;

/// <summary><c>lora adapt</c>: a thin shell over the library that writes a folder <c>lora train</c> takes, and refuses bad input in one line.</summary>
public class AdaptCommandTests
{
    static string Tsv(TempDir dir, string name, IEnumerable<TextData.LabeledText> rows) => TextData.WriteTsv(dir.File(name), rows);

    [Fact]
    public void Adapt_writes_a_folder_that_lora_train_takes()
    {
        using var dir = new TempDir();
        var model = TinyCheckpoint.Bert(dir.File("bert"), seed: 3);
        var sms = Tsv(dir, "sms.tsv", TextData.SmsSpam(0, 300));
        var adapted = dir.File("adapted");

        var result = CliRun.Lora("adapt", "--model", model, "--data", sms, "--max-rows", "96", "--epochs", "1", "--max-length", "48",
            "--validation-fraction", "0.25", "--output", adapted, "--json");

        result.ExitCode.Should().Be(ExitCodes.Success, result.Stderr);
        using (var json = JsonDocument.Parse(result.Stdout))
        {
            json.RootElement.GetProperty("rows").GetInt32().Should().Be(72);
            json.RootElement.GetProperty("validationRows").GetInt32().Should().Be(24);
            json.RootElement.GetProperty("architecture").GetString().Should().Be("BertForMaskedLM");
            json.RootElement.GetProperty("learningRate").GetDouble().Should().Be(5e-4, "LoRA's default rate");
            json.RootElement.GetProperty("adaptedModules").GetArrayLength().Should().Be(12, "every transformer-layer linear by default");
        }
        result.Stderr.Should().Contain("step").And.Contain("Wrote the adapted checkpoint");
        File.Exists(Path.Combine(adapted, "adapt.json")).Should().BeTrue();

        var train = CliRun.Lora("train", "--model", adapted, "--data", Tsv(dir, "train.tsv", TextData.Balanced(TextData.SmsSpam(1000, 1000), 20)),
            "--epochs", "1", "--max-length", "48", "--output", dir.File("run"), "--json");
        train.ExitCode.Should().Be(ExitCodes.Success, train.Stderr);
    }

    [Fact]
    public void A_plain_text_file_full_adaptation_and_force_work()
    {
        using var dir = new TempDir();
        var model = TinyCheckpoint.Create("distilbert", dir.File("distilbert"), seed: 3);
        var text = dir.File("notes.txt");
        File.WriteAllLines(text, TextData.SmsSpam(0, 40).Select(r => r.Text));
        var output = dir.File("out");
        Directory.CreateDirectory(output);
        File.WriteAllText(Path.Combine(output, "old.txt"), "old");

        CliRun.Lora("adapt", "--model", model, "--data", text, "--output", output)
            .ShouldFailCleanly(ExitCodes.Usage, "not empty", "--force");
        var result = CliRun.Lora("adapt", "--model", model, "--data", text, "--output", output, "--method", "full", "--force");

        result.ExitCode.Should().Be(ExitCodes.Success, result.Stderr);
        result.Stdout.Should().Contain("DistilBertForMaskedLM, full").And.Contain("Texts: 40 trained");
        File.Exists(Path.Combine(output, "old.txt")).Should().BeFalse("--force replaces the folder");
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "adapt.json")))!;
        report["learningRate"]!.GetValue<double>().Should().Be(5e-5, "full adaptation's default rate");
    }

    [Fact]
    public void Keep_adapter_writes_the_peft_folder()
    {
        using var dir = new TempDir();
        var model = TinyCheckpoint.Create("roberta", dir.File("roberta"), seed: 3);
        var sms = Tsv(dir, "sms.tsv", TextData.SmsSpam(0, 32));

        var result = CliRun.Lora("adapt", "--model", model, "--data", sms, "--output", dir.File("out"), "--keep-adapter", "--targets", "query,key,value", "--rank", "4");

        result.ExitCode.Should().Be(ExitCodes.Success, result.Stderr);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.File("out"), "adapter", "adapter_config.json")))!;
        config["r"]!.GetValue<int>().Should().Be(4);
        config["target_modules"]!.AsArray().Select(n => n!.GetValue<string>()).Should().BeEquivalentTo("query", "key", "value");

        var train = CliRun.Lora("train", "--model", dir.File("out"), "--init-adapter", Path.Combine(dir.File("out"), "adapter"),
            "--data", Tsv(dir, "train.tsv", TextData.Balanced(TextData.SmsSpam(1000, 1000), 16)), "--epochs", "1", "--rank", "4", "--output", dir.File("run"), "--json");
        train.ExitCode.Should().Be(ExitCodes.Success, "training starts from the adapter adapt kept (with its rank on the layers it targets too): " + train.Stderr);
    }

    [Fact]
    public void Bad_input_fails_with_one_line_and_a_non_zero_exit()
    {
        using var dir = new TempDir();
        var model = TinyCheckpoint.Create("distilbert", dir.File("distilbert"), seed: 3);
        var sms = SharedData.Data("sms_spam", "SMSSpamCollection");
        var blank = dir.File("blank.txt");
        File.WriteAllText(blank, "\n   \n\t\n");
        var unsupported = dir.File("xlnet");
        Directory.CreateDirectory(unsupported);
        File.WriteAllText(Path.Combine(unsupported, "config.json"), """{"model_type": "xlnet", "d_model": 32}""");
        string Out(string name) => dir.File(name);

        CliRun.Lora("adapt", "--model", model, "--data", sms, "--output", Out("a")).ShouldFailCleanly(ExitCodes.Usage, "text column");
        CliRun.Lora("adapt", "--model", model, "--data", blank, "--output", Out("b")).ShouldFailCleanly(ExitCodes.InvalidInput, "no text");
        CliRun.Lora("adapt", "--model", unsupported, "--data", blank, "--output", Out("c")).ShouldFailCleanly(ExitCodes.InvalidInput, "xlnet", "not supported");
        CliRun.Lora("adapt", "--model", model, "--data", "/no/such/file.txt", "--output", Out("d")).ShouldFailCleanly(ExitCodes.NotFound, "/no/such/file.txt");
        CliRun.Lora("adapt", "--model", model, "--data", blank, "--output", Out("e"), "--method", "full", "--keep-adapter").ShouldFailCleanly(ExitCodes.Usage, "--keep-adapter");
        CliRun.Lora("adapt", "--model", model, "--data", blank, "--output", Out("f"), "--lora-head").ShouldFailCleanly(ExitCodes.Usage, "--lora-head");
        CliRun.Lora("adapt", "--model", model, "--data", sms, "--text-column", "1", "--output", Out("g"), "--targets", "none").ShouldFailCleanly(ExitCodes.Usage, "train nothing");
        CliRun.Lora("adapt", "--model", model, "--data", blank, "--output", Out("h"), "--mask-probability", "1.5").ShouldFailCleanly(ExitCodes.Usage, "--mask-probability");
        CliRun.Lora("adapt", "--model", model, "--data", blank).ShouldFailCleanly(ExitCodes.Usage, "--output");
        Directory.GetDirectories(dir.Path).Select(Path.GetFileName).Should().BeEquivalentTo("distilbert", "xlnet");
    }

    [Fact]
    public void Adapt_is_listed_and_has_its_own_help()
    {
        CliRun.Lora("--help").Stdout.Should().Contain("  adapt ");
        var help = CliRun.Lora("adapt", "--help");

        help.ExitCode.Should().Be(0);
        foreach (var option in new[] { "--model", "--data", "--text-column", "--output", "--method", "--keep-adapter", "--epochs", "--learning-rate",
                     "--batch-size", "--max-length", "--mask-probability", "--seed", "--validation-fraction", "--max-rows", "--json", "--force", "--targets", "--rank" })
            help.Stdout.Should().Contain(option);
    }
}
