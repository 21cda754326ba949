using System.Text.Json;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Diagnostics;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary>
/// <c>lora logits</c> runs a checkpoint folder (and optionally its PEFT adapter) on a cases file and prints the
/// logits; they must match the Hugging Face reference logits stored in the fixtures' cases.json.
/// </summary>
public class LogitsCommandTests
{
    public static IEnumerable<object[]> Families => SharedData.Families.Select(f => new object[] { f });

    static string Cases(string family) => Path.Combine(SharedData.Fixture(family), "cases.json");

    static float[][] ParseLogits(string stdout) => JsonSerializer.Deserialize<float[][]>(stdout)!;

    [Theory]
    [MemberData(nameof(Families))]
    public void Logits_of_the_base_model_match_the_reference(string family)
    {
        var reference = LogitsCases.Load(Cases(family));

        var result = CliRun.Lora("logits", "--model", SharedData.Fixture(family), "--cases", Cases(family));

        result.ExitCode.Should().Be(ExitCodes.Success, result.Stderr);
        var logits = ParseLogits(result.Stdout);
        logits.Should().HaveCount(reference.InputIds.Length);
        LogitsCases.MaxAbsDifference(logits, reference.Logits!).Should().BeLessThan(reference.Tolerance);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Logits_with_the_adapter_match_the_adapter_reference(string family)
    {
        var reference = LogitsCases.Load(Cases(family));

        var result = CliRun.Lora("logits", "--model", SharedData.Fixture(family),
            "--adapter", Path.Combine(SharedData.Fixture(family), "adapter"), "--cases", Cases(family));

        result.ExitCode.Should().Be(ExitCodes.Success, result.Stderr);
        var logits = ParseLogits(result.Stdout);
        LogitsCases.MaxAbsDifference(logits, reference.LogitsWithAdapter!).Should().BeLessThan(reference.Tolerance);
        LogitsCases.MaxAbsDifference(logits, reference.Logits!).Should().BeGreaterThan(reference.Tolerance, "the adapter changes the output");
    }

    [Fact]
    public void Logits_stdout_holds_only_a_json_array_of_rows()
    {
        var result = CliRun.Lora("logits", "--model", SharedData.Fixture("distilbert"),
            "--adapter", Path.Combine(SharedData.Fixture("distilbert"), "adapter"), "--cases", Cases("distilbert"));

        result.ExitCode.Should().Be(0, result.Stderr);
        using var doc = JsonDocument.Parse(result.Stdout);
        doc.RootElement.ValueKind.Should().Be(JsonValueKind.Array);
        doc.RootElement.EnumerateArray().Should().OnlyContain(row => row.ValueKind == JsonValueKind.Array && row.GetArrayLength() > 0);
        result.Stderr.Should().Contain("Adapter: rank", "messages go to stderr, not stdout");
    }

    [Fact]
    public void Logits_missing_model_folder_fails_with_not_found()
    {
        var missing = Path.Combine(Path.GetTempPath(), "no-such-model-" + Guid.NewGuid().ToString("N"));

        CliRun.Lora("logits", "--model", missing, "--cases", Cases("bert")).ShouldFailCleanly(ExitCodes.NotFound, "Model folder not found", missing);
    }

    [Fact]
    public void Logits_missing_cases_file_fails_with_not_found()
    {
        using var dir = new TempDir();

        CliRun.Lora("logits", "--model", SharedData.Fixture("bert"), "--cases", dir.File("cases.json"))
            .ShouldFailCleanly(ExitCodes.NotFound, "Cases file not found");
    }

    [Fact]
    public void Logits_folder_without_adapter_files_fails_with_not_found()
    {
        using var dir = new TempDir();

        CliRun.Lora("logits", "--model", SharedData.Fixture("bert"), "--adapter", dir.Path, "--cases", Cases("bert"))
            .ShouldFailCleanly(ExitCodes.NotFound, "adapter_config.json");
    }

    [Fact]
    public void Logits_cases_file_without_input_ids_fails_as_invalid_input()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("cases.json"), """{ "attention_mask": [[1, 1]] }""");

        CliRun.Lora("logits", "--model", SharedData.Fixture("bert"), "--cases", dir.File("cases.json"))
            .ShouldFailCleanly(ExitCodes.InvalidInput, "no input_ids");
    }

    [Fact]
    public void Logits_cases_file_that_is_not_json_fails_as_invalid_input()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("cases.json"), "input_ids = [[101, 102]]");

        CliRun.Lora("logits", "--model", SharedData.Fixture("bert"), "--cases", dir.File("cases.json"))
            .ShouldFailCleanly(ExitCodes.InvalidInput);
    }

    [Fact]
    public void Logits_without_model_fails_as_usage_error()
    {
        CliRun.Lora("logits", "--cases", Cases("bert")).ShouldFailCleanly(ExitCodes.Usage, "--model", "lora logits --help");
    }
}
