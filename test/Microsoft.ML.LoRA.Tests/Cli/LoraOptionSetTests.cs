using System.CommandLine;
using Microsoft.ML.LoRA.Cli.Options;
using Microsoft.ML.LoRA.Lora;

namespace Microsoft.ML.LoRA.Tests.Cli;

using Command = System.CommandLine.Command; // Microsoft.ML.Command (a namespace) would hide it here

/// <summary>The shared LoRA options turn a command line into the library's <see cref="LoraOptions"/>.</summary>
public class LoraOptionSetTests
{
    static (LoraOptionSet Set, ParseResult Parse) Parse(params string[] args)
    {
        var set = new LoraOptionSet();
        var command = new Command("test");
        set.AddTo(command);
        return (set, command.Parse(args));
    }

    static LoraOptions Read(NoTargetsMeans whenNoTargets, params string[] args)
    {
        var (set, parse) = Parse(args);
        parse.Errors.Should().BeEmpty();
        return set.Read(parse, whenNoTargets);
    }

    [Fact]
    public void Defaults_are_the_library_defaults()
    {
        var options = Read(NoTargetsMeans.LibraryDefault);
        var library = new LoraOptions();

        options.Rank.Should().Be(library.Rank);
        options.Alpha.Should().Be(library.Alpha);
        options.Dropout.Should().Be(library.Dropout);
        options.TargetModules.Should().BeNull("train's default leaves the choice (query + value) to the library");
    }

    [Fact]
    public void No_targets_means_no_adapters_for_inspect()
    {
        Read(NoTargetsMeans.NoAdapters).TargetModules.Should().BeEmpty();
    }

    [Fact]
    public void Targets_are_split_on_commas_and_may_repeat()
    {
        Read(NoTargetsMeans.NoAdapters, "--targets", "query, value", "--targets", "dense").TargetModules
            .Should().Equal("query", "value", "dense");
    }

    [Fact]
    public void Targets_none_means_no_adapters_whatever_the_default()
    {
        Read(NoTargetsMeans.LibraryDefault, "--targets", "none").TargetModules.Should().BeEmpty();
    }

    [Fact]
    public void Switches_set_the_library_switches_and_leave_targets_open()
    {
        var options = Read(NoTargetsMeans.NoAdapters, "--lora-key", "--lora-projection", "--lora-head", "--rank", "4", "--alpha", "32", "--dropout", "0.1");

        options.TargetModules.Should().BeNull();
        (options.LoraKey, options.LoraProjection, options.LoraHead).Should().Be((true, true, true));
        (options.LoraQuery, options.LoraValue, options.LoraMlp).Should().Be((false, false, false));
        (options.Rank, options.Alpha, options.Dropout).Should().Be((4, 32.0, 0.1));
    }

    [Fact]
    public void The_variant_options_set_a_quantized_base_and_LoftQ()
    {
        var options = Read(NoTargetsMeans.LibraryDefault, "--quantize", "nf4", "--double-quant", "--init", "loftq", "--loftq-bits", "4", "--loftq-iter", "3");

        (options.BaseQuantization, options.DoubleQuantization).Should().Be((Microsoft.ML.LoRA.Models.Quantization.BaseQuantization.Nf4, true));
        (options.Init, options.LoftqBits, options.LoftqIterations).Should().Be((LoraInit.Loftq, 4, 3));
        Read(NoTargetsMeans.LibraryDefault).BaseQuantization.Should().Be(Microsoft.ML.LoRA.Models.Quantization.BaseQuantization.None);
        var int8 = Read(NoTargetsMeans.LibraryDefault, "--quantize", "int8", "--init", "loftq");
        (int8.LoftqBits, int8.EffectiveLoftqBits).Should().Be(((int?)null, 8), "LoftQ follows an int8 base unless told otherwise");
        int8.Validate();
        Read(NoTargetsMeans.LibraryDefault, "--quantize", "bf16").BaseQuantization.Should().Be(Microsoft.ML.LoRA.Models.Quantization.BaseQuantization.BFloat16);
        Read(NoTargetsMeans.LibraryDefault, "--quantize", "fp16").BaseQuantization.Should().Be(Microsoft.ML.LoRA.Models.Quantization.BaseQuantization.Float16);
    }

    [Theory]
    [InlineData("*--double-quant*--quantize nf4 or fp4*", "--double-quant")]
    [InlineData("*--double-quant*--quantize nf4 or fp4*", "--double-quant", "--quantize", "int8")]
    [InlineData("*--quantize*'nf5'*", "--quantize", "nf5")]
    [InlineData("*--loftq-bits*'2'*", "--loftq-bits", "2")]
    public void Impossible_variant_options_are_parse_errors(string message, params string[] args)
    {
        var (_, parse) = Parse(args);

        parse.Errors.Select(e => e.Message).Should().ContainMatch(message);
    }

    [Fact]
    public void Numbers_are_read_in_the_invariant_culture()
    {
        var previous = System.Globalization.CultureInfo.CurrentCulture;
        System.Globalization.CultureInfo.CurrentCulture = new System.Globalization.CultureInfo("de-DE");
        try
        {
            Read(NoTargetsMeans.NoAdapters, "--dropout", "0.25").Dropout.Should().Be(0.25);
        }
        finally
        {
            System.Globalization.CultureInfo.CurrentCulture = previous;
        }
    }

    [Fact]
    public void Targets_without_a_value_is_a_parse_error()
    {
        Parse("--targets").Parse.Errors.Should().NotBeEmpty();
    }

    [Fact]
    public void Layers_and_rank_and_alpha_patterns_reach_the_options()
    {
        var options = Read(NoTargetsMeans.LibraryDefault, "--layers", "0,2", "--layers-pattern", "layer",
            "--rank-pattern", @"value=16,layer\.0\..{1,2}query=4", "--rank-pattern", "key=2", "--alpha-pattern", "value=32");

        options.LayersToTransform.Should().Equal(0, 2);
        options.LayersPattern.Should().Equal("layer");
        options.RankPattern.Should().BeEquivalentTo(new Dictionary<string, int> { ["value"] = 16, [@"layer\.0\..{1,2}query"] = 4, ["key"] = 2 },
            "a comma inside a regular expression stays in its key");
        options.AlphaPattern.Should().BeEquivalentTo(new Dictionary<string, double> { ["value"] = 32 });
    }

    [Theory]
    [InlineData("--rank-pattern", "value=0")]
    [InlineData("--rank-pattern", "value")]
    [InlineData("--alpha-pattern", "value=-1")]
    [InlineData("--layers-pattern", "h")]
    public void Malformed_patterns_are_usage_errors(string option, string value)
    {
        Parse(option, value).Parse.Errors.Should().NotBeEmpty();
    }
}
