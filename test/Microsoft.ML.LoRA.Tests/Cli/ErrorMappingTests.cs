using System.Text.Json;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Data;

namespace Microsoft.ML.LoRA.Tests.Cli;

/// <summary>Every failure maps to one exit code and a one-line message, in one place.</summary>
public class ErrorMappingTests
{
    public static IEnumerable<object[]> Cases => new[]
    {
        new object[] { new FileNotFoundException("Data file not found: a.tsv"), ExitCodes.NotFound },
        new object[] { new DirectoryNotFoundException("Model folder not found: m"), ExitCodes.NotFound },
        new object[] { new CheckpointFormatException("config.json", "not valid JSON"), ExitCodes.InvalidInput },
        new object[] { new InvalidDataException("a.jsonl: line 3 is not valid JSON"), ExitCodes.InvalidInput },
        new object[] { new JsonException("'x' is an invalid start of a value"), ExitCodes.InvalidInput },
        new object[] { new NotSupportedException("model family X is not supported"), ExitCodes.InvalidInput },
        new object[] { new ArgumentException("LoRA rank must be positive (got 0).", "Rank"), ExitCodes.Usage },
        new object[] { new DataColumnNotFoundException("txt", "text", "a.tsv", new[] { "label", "sentence" }), ExitCodes.Usage },
        new object[] { new CliUsageException("Give either --validation or --validation-fraction."), ExitCodes.Usage },
        new object[] { new UnauthorizedAccessException("Access to the path '/root/x' is denied."), ExitCodes.IoError },
        new object[] { new IOException("No space left on device"), ExitCodes.IoError },
        new object[] { new OperationCanceledException(), ExitCodes.Cancelled },
        new object[] { new InvalidOperationException("tensor shapes differ"), ExitCodes.Failure },
        new object[] { new AggregateException(new FileNotFoundException("x")), ExitCodes.NotFound },
        new object[] { Splitter(new InvalidDataException("a.jsonl: line 3 is not valid JSON")), ExitCodes.InvalidInput },
        new object[] { Splitter(Splitter(new InvalidDataException("a.jsonl: line 3 is not valid JSON"))), ExitCodes.InvalidInput },
        new object[] { Splitter(new OperationCanceledException()), ExitCodes.Cancelled },
        new object[] { Splitter(new InvalidOperationException("tensor shapes differ")), ExitCodes.Failure },
        new object[] { StreamReading(new EndOfStreamException("A quoted field opened on line 2 was never closed")), ExitCodes.InvalidInput },
        new object[] { new InvalidOperationException("Shuffle input cursor reader failed with an exception", new IOException("disk")), ExitCodes.IoError },
        new object[] { new InvalidOperationException("any wrapper", new FileNotFoundException("Data file not found: a.tsv")), ExitCodes.NotFound },
        new object[] { new InvalidOperationException("ours", new InvalidOperationException("theirs")), ExitCodes.Failure },
    };

    /// <summary>What ML.NET's splitter throws when a data view's source fails on a worker thread.</summary>
    static InvalidOperationException Splitter(Exception inner) =>
        new("Splitter/consolidator worker encountered exception while consuming source data", inner);

    /// <summary>What ML.NET's TextLoader throws when its reader thread fails.</summary>
    static FormatException StreamReading(Exception inner) => new("Stream reading encountered exception", inner);

    [Fact]
    public void MlNet_wrappers_report_the_message_of_the_exception_they_wrap()
    {
        var error = ErrorMapping.Classify(Splitter(Splitter(new InvalidDataException("/data/a.jsonl: line 3 is not valid JSON"))));

        error.Should().Be(new CliError(ExitCodes.InvalidInput, "/data/a.jsonl: line 3 is not valid JSON"));
        ErrorMapping.Classify(StreamReading(new EndOfStreamException("A quoted field opened on line 2 was never closed")))
            .Message.Should().Be("A quoted field opened on line 2 was never closed");
    }

    [Fact]
    public void Text_loader_failures_get_the_file_name_in_front()
    {
        var failure = Splitter(StreamReading(new EndOfStreamException("A quoted field opened on line 2 was never closed")));

        var named = ErrorMapping.NameTextLoaderFailure(failure, "/data/a.csv");

        named.Should().NotBeNull();
        ErrorMapping.Classify(named!).Should().Be(new CliError(ExitCodes.InvalidInput, "/data/a.csv: A quoted field opened on line 2 was never closed"));
        ErrorMapping.NameTextLoaderFailure(Splitter(new InvalidDataException("a.jsonl: line 3 is not valid JSON")), "a.jsonl").Should().BeNull();
    }

    [Fact]
    public void A_wrapper_around_an_internal_error_names_the_inner_one()
    {
        var error = ErrorMapping.Classify(Splitter(new InvalidOperationException("tensor shapes differ")));

        error.Message.Should().Be("internal error (InvalidOperationException): tensor shapes differ");
    }

    [Fact]
    public void An_internal_error_that_wraps_another_keeps_its_own_message()
    {
        var error = ErrorMapping.Classify(new InvalidOperationException("ours", new InvalidOperationException("theirs")));

        error.Message.Should().Be("internal error (InvalidOperationException): ours");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Each_exception_kind_has_its_exit_code(Exception exception, int exitCode)
    {
        ErrorMapping.Classify(exception).ExitCode.Should().Be(exitCode);
    }

    [Fact]
    public void Exit_codes_are_distinct_and_only_success_is_zero()
    {
        var codes = new[] { ExitCodes.Failure, ExitCodes.Usage, ExitCodes.NotFound, ExitCodes.InvalidInput, ExitCodes.IoError, ExitCodes.Cancelled };

        codes.Should().OnlyHaveUniqueItems().And.NotContain(ExitCodes.Success);
        ExitCodes.Success.Should().Be(0);
    }

    [Fact]
    public void Argument_errors_drop_the_csharp_parameter_name()
    {
        var error = ErrorMapping.Classify(new ArgumentException("LoRA rank must be positive (got 0).", "Rank"));

        error.Message.Should().Be("LoRA rank must be positive (got 0).");
    }

    [Fact]
    public void Unexpected_exceptions_are_reported_as_internal_errors_with_their_type()
    {
        var error = ErrorMapping.Classify(new InvalidOperationException("tensor shapes differ"));

        error.Message.Should().Be("internal error (InvalidOperationException): tensor shapes differ");
    }

    [Fact]
    public void Report_writes_one_line_without_a_stack_trace()
    {
        Exception thrown;
        try { throw new InvalidDataException("line one\nline two"); }
        catch (Exception e) { thrown = e; }
        var stderr = new StringWriter();

        int code = ErrorMapping.Report(thrown, stderr);

        code.Should().Be(ExitCodes.InvalidInput);
        stderr.ToString().Should().Be("lora: error: line one line two" + Environment.NewLine);
    }
}
