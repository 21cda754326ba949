using System.Text;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Checkpoints;

/// <summary>Every malformed safetensors file is refused with a <see cref="CheckpointFormatException"/> that names the file and the problem.</summary>
public sealed class SafeTensorsHeaderValidationTests : IDisposable
{
    readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    string Write(byte[] bytes)
    {
        var path = _dir.File($"{Guid.NewGuid():N}.safetensors");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Opens the bytes as a safetensors file and returns the refusal's message (which must name the file).</summary>
    string Refusal(byte[] bytes)
    {
        var path = Write(bytes);
        var e = FluentActions.Invoking(() => SafeTensorsFile.Open(path)).Should().Throw<CheckpointFormatException>().Which;
        e.FilePath.Should().Be(path);
        e.Message.Should().StartWith(path + ": ");
        return e.Message;
    }

    string Refusal(string header, int dataBytes = 16) => Refusal(SafeTensorsBytes.Build(header, dataBytes));

    [Fact]
    public void A_well_formed_file_opens()
    {
        var file = SafeTensorsFile.Open(Write(SafeTensorsBytes.Build(SafeTensorsBytes.OneTensor(), 16)));

        file.Entries.Should().ContainSingle().Which.Shape.Should().Equal(2, 2);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    public void File_shorter_than_8_bytes_is_rejected(int length)
    {
        Refusal(new byte[length]).Should().Contain($"file is {length} bytes long").And.Contain("8-byte header length");
    }

    [Fact]
    public void Header_length_past_end_of_file_is_rejected()
    {
        var bytes = SafeTensorsBytes.Build(SafeTensorsBytes.OneTensor(), 16, declaredLength: 5000);

        Refusal(bytes).Should().Contain("header length 5000 runs past the end of the file");
    }

    [Theory]
    [InlineData(100UL * 1024 * 1024 + 1)]
    [InlineData(ulong.MaxValue)]
    public void Header_length_over_the_100_MB_limit_is_rejected(ulong declared)
    {
        var bytes = SafeTensorsBytes.Build(SafeTensorsBytes.OneTensor(), 16, declaredLength: declared);

        Refusal(bytes).Should().Contain($"header length {declared} exceeds the 104857600-byte limit");
    }

    [Fact]
    public void Header_that_is_not_UTF8_is_rejected()
    {
        var header = Encoding.UTF8.GetBytes(SafeTensorsBytes.OneTensor());
        header[3] = 0xff;

        Refusal(SafeTensorsBytes.Build(header, new byte[16])).Should().Contain("header is not valid UTF-8 (bad byte at header offset 3)");
    }

    [Theory]
    [InlineData("{\"t\": ")]
    [InlineData("not json at all")]
    [InlineData("{\"t\": {\"dtype\": \"F32\",}}")]
    [InlineData("")]
    public void Header_that_is_not_JSON_is_rejected(string header)
    {
        Refusal(header).Should().Contain("header is not valid JSON");
    }

    [Theory]
    [InlineData("[1, 2]", "array")]
    [InlineData("\"F32\"", "string")]
    [InlineData("42", "number")]
    [InlineData("null", "null")]
    public void Header_that_is_not_an_object_is_rejected(string header, string kind)
    {
        Refusal(header).Should().Contain($"header is a JSON {kind}, not an object");
    }

    [Fact]
    public void Tensor_entry_that_is_not_an_object_is_rejected()
    {
        Refusal("{\"t\": [1, 2]}").Should().Contain("tensor 't': entry is a JSON array, not an object");
    }

    [Fact]
    public void Missing_dtype_is_rejected()
    {
        Refusal("{\"t\": {\"shape\": [2, 2], \"data_offsets\": [0, 16]}}").Should().Contain("tensor 't': has no dtype");
    }

    [Theory]
    [InlineData("\"F8_E4M3\"")]
    [InlineData("\"f32\"")]
    [InlineData("\"\"")]
    public void Unknown_dtype_is_rejected_and_the_message_lists_the_supported_ones(string dtype)
    {
        Refusal(SafeTensorsBytes.OneTensor(dtype: dtype)).Should()
            .Contain($"tensor 't': unknown dtype {dtype.Replace('"', '\'')}").And.Contain("F32, F16, BF16");
    }

    [Fact]
    public void Dtype_that_is_not_a_string_is_rejected()
    {
        Refusal(SafeTensorsBytes.OneTensor(dtype: "4")).Should().Contain("tensor 't': dtype is 4, not a string");
    }

    [Fact]
    public void Negative_shape_is_rejected()
    {
        Refusal(SafeTensorsBytes.OneTensor(shape: "[-2, -2]")).Should().Contain("shape[0] is -2; dimensions cannot be negative");
    }

    [Theory]
    [InlineData("[2, 1.5]", "shape[1] is 1.5, not an integer")]
    [InlineData("[2, \"2\"]", "shape[1] is \"2\", not an integer")]
    [InlineData("[2, null]", "shape[1] is null, not an integer")]
    [InlineData("[2, 2e0]", "shape[1] is 2e0, not an integer")]
    public void Non_integer_shape_is_rejected(string shape, string expected)
    {
        Refusal(SafeTensorsBytes.OneTensor(shape: shape)).Should().Contain(expected);
    }

    [Theory]
    [InlineData("[4294967296, 4294967296, 4294967296]", "holds more elements than a 64-bit byte count can address")]
    [InlineData("[4611686018427387904, 4]", "holds more elements than a 64-bit byte count can address")]
    [InlineData("[99999999999999999999]", "shape[0] is 99999999999999999999, too large for a 64-bit integer")]
    public void Overflowing_shape_is_rejected(string shape, string expected)
    {
        Refusal(SafeTensorsBytes.OneTensor(shape: shape)).Should().Contain(expected);
    }

    [Fact]
    public void Shape_with_too_many_dimensions_is_rejected()
    {
        var shape = "[" + string.Join(", ", Enumerable.Repeat("1", 17)) + "]";

        Refusal(SafeTensorsBytes.OneTensor(shape: shape, offsets: "[0, 4]")).Should().Contain("shape has 17 dimensions (at most 16)");
    }

    [Fact]
    public void Shape_that_is_not_an_array_is_rejected()
    {
        Refusal(SafeTensorsBytes.OneTensor(shape: "4")).Should().Contain("tensor 't': shape is 4, not an array");
    }

    [Fact]
    public void Data_offsets_past_the_end_are_rejected()
    {
        Refusal(SafeTensorsBytes.OneTensor(offsets: "[16, 32]")).Should()
            .Contain("data_offsets [16, 32] run past the end of the data section (16 bytes)");
    }

    [Fact]
    public void Reversed_data_offsets_are_rejected()
    {
        Refusal(SafeTensorsBytes.OneTensor(offsets: "[16, 0]")).Should().Contain("data_offsets [16, 0] are reversed");
    }

    [Fact]
    public void Negative_data_offsets_are_rejected()
    {
        Refusal(SafeTensorsBytes.OneTensor(offsets: "[-16, 0]")).Should().Contain("data_offsets [-16, 0] are negative");
    }

    [Theory]
    [InlineData("[0, 12]", "shape [2, 2] of F32 needs 16 bytes but data_offsets [0, 12] hold 12")]
    [InlineData("[0, 8]", "needs 16 bytes but data_offsets [0, 8] hold 8")]
    public void Data_offsets_that_do_not_match_shape_times_dtype_size_are_rejected(string offsets, string expected)
    {
        Refusal(SafeTensorsBytes.OneTensor(offsets: offsets)).Should().Contain(expected);
    }

    [Fact]
    public void Data_offsets_must_match_the_dtype_size_too()
    {
        // 2 × 2 F16 elements are 8 bytes, not 16.
        Refusal(SafeTensorsBytes.OneTensor(dtype: "\"F16\"")).Should().Contain("shape [2, 2] of F16 needs 8 bytes");
    }

    [Theory]
    [InlineData("[0]", "data_offsets is [0], not an array [begin, end]")]
    [InlineData("[0, 16, 32]", "not an array [begin, end]")]
    [InlineData("\"0-16\"", "not an array [begin, end]")]
    [InlineData("[\"0\", 16]", "data_offsets begin is \"0\", not an integer")]
    [InlineData("[0, 16.5]", "data_offsets end is 16.5, not an integer")]
    [InlineData("[0, 1e400]", "data_offsets end is 1e400, not an integer")]
    public void Malformed_data_offsets_are_rejected(string offsets, string expected)
    {
        Refusal(SafeTensorsBytes.OneTensor(offsets: offsets)).Should().Contain(expected);
    }

    [Fact]
    public void Missing_data_offsets_are_rejected()
    {
        Refusal("{\"t\": {\"dtype\": \"F32\", \"shape\": [2, 2]}}").Should().Contain("tensor 't': has no data_offsets");
    }

    [Fact]
    public void Overlapping_tensors_are_rejected()
    {
        var header = "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}," +
                     " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}";

        Refusal(header).Should().Contain("tensors 'a' (bytes 0-8) and 'b' (bytes 4-12) overlap in the data section");
    }

    [Fact]
    public void Empty_tensors_do_not_count_as_overlapping()
    {
        var header = "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}," +
                     " \"b\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 4]}}";

        SafeTensorsFile.Open(Write(SafeTensorsBytes.Build(header, 8))).Entries.Should().HaveCount(2);
    }

    [Fact]
    public void Duplicate_names_are_rejected()
    {
        var header = "{\"t\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}," +
                     " \"t\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}";

        Refusal(header).Should().Contain("'t' appears twice in the header");
    }

    [Theory]
    [InlineData("[\"format\", \"pt\"]", "__metadata__ is a JSON array; it must be an object of strings")]
    [InlineData("\"pt\"", "__metadata__ is a JSON string; it must be an object of strings")]
    [InlineData("{\"format\": 1}", "__metadata__ value 'format' is a JSON number; it must be a string")]
    [InlineData("{\"format\": {\"a\": \"b\"}}", "__metadata__ value 'format' is a JSON object; it must be a string")]
    public void Metadata_of_the_wrong_type_is_rejected(string metadata, string expected)
    {
        var header = $"{{\"__metadata__\": {metadata}, \"t\": {{\"dtype\": \"F32\", \"shape\": [2, 2], \"data_offsets\": [0, 16]}}}}";

        Refusal(header).Should().Contain(expected);
    }

    [Theory]
    [InlineData(4)]
    [InlineData(100_000)]
    public void Deeply_nested_JSON_is_rejected(int depth)
    {
        var nested = new string('[', depth) + new string(']', depth);
        var header = SafeTensorsBytes.OneTensor(shape: nested);

        Refusal(header).Should().Contain("header nests JSON deeper than 3 levels");
    }

    [Fact]
    public void Deeply_nested_metadata_is_rejected()
    {
        var nested = string.Concat(Enumerable.Repeat("{\"a\": ", 50)) + "1" + new string('}', 50);

        Refusal($"{{\"__metadata__\": {nested}}}").Should().Contain("header nests JSON deeper than 3 levels");
    }

    [Fact]
    public void Missing_file_is_reported_as_not_found()
    {
        var path = _dir.File("absent.safetensors");

        FluentActions.Invoking(() => SafeTensorsFile.Open(path)).Should().Throw<FileNotFoundException>().WithMessage($"*{path}*");
    }
}
