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
    };

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
