using Microsoft.ML.LoRA.Cli.Infrastructure;

namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary><c>lora --help</c> and each command's help say what there is and how to call it.</summary>
public class HelpTests
{
    [Fact]
    public void Root_help_lists_the_commands()
    {
        var result = CliRun.Lora("--help");

        result.ExitCode.Should().Be(ExitCodes.Success);
        result.Stdout.Should().Contain("Usage:").And.Contain("lora [command] [options]");
        result.Stdout.Should().Contain("inspect").And.Contain("logits").And.Contain("LoRA");
        result.Stderr.Should().BeEmpty();
    }

    [Fact]
    public void Every_command_is_listed_and_has_its_own_help()
    {
        var root = CliRun.Lora("--help");

        foreach (var command in new[] { "train", "evaluate", "predict", "inspect", "logits", "tokenize", "merge", "export-adapter", "export-onnx", "init-model" })
        {
            root.Stdout.Should().Contain($"  {command} ", "'{0}' is a command", command);
            var help = CliRun.Lora(command, "--help");
            help.ExitCode.Should().Be(0);
            help.Stdout.Should().Contain($"lora {command} [options]");
        }
    }

    [Fact]
    public void Inspect_help_lists_its_options()
    {
        var result = CliRun.Lora("inspect", "--help");

        result.ExitCode.Should().Be(0);
        result.Stdout.Should().Contain("lora inspect [options]");
        foreach (var option in new[] { "--config", "--labels", "--rank", "--alpha", "--dropout", "--targets", "--lora-query",
                     "--lora-key", "--lora-value", "--lora-projection", "--lora-mlp", "--lora-head", "--json" })
            result.Stdout.Should().Contain(option);
        result.Stdout.Should().Contain("[default: 8]", "defaults are shown");
    }

    [Fact]
    public void Logits_help_lists_its_options()
    {
        var result = CliRun.Lora("logits", "--help");

        result.ExitCode.Should().Be(0);
        result.Stdout.Should().Contain("lora logits [options]").And.Contain("--model").And.Contain("--adapter").And.Contain("--cases");
    }

    [Fact]
    public void No_command_is_a_usage_error()
    {
        CliRun.Lora().ShouldFailCleanly(ExitCodes.Usage, "lora --help");
    }

    [Fact]
    public void Unknown_command_is_a_usage_error_naming_it()
    {
        CliRun.Lora("tarin").ShouldFailCleanly(ExitCodes.Usage, "'tarin'");
    }
}
