using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Checkpoints.Pickle;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Checkpoints;

/// <summary>
/// Hostile, legacy and damaged pytorch_model.bin files are refused with a <see cref="CheckpointFormatException"/> that
/// names the file and the problem; nothing in them is ever executed.
/// </summary>
public sealed class PyTorchBinRefusalTests : IDisposable
{
    readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    string Write(byte[] bytes)
    {
        var path = _dir.File($"{Guid.NewGuid():N}.bin");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Opens the file and reads every tensor; returns the refusal's message, which must name the file.</summary>
    static string Refusal(string path)
    {
        var e = FluentActions.Invoking(() => ReadAll(path)).Should().Throw<CheckpointFormatException>().Which;
        e.FilePath.Should().Be(Path.GetFullPath(path));
        return e.Message;
    }

    string Refusal(byte[] bytes) => Refusal(Write(bytes));

    static void ReadAll(string path)
    {
        using var source = PyTorchBinSource.Open(path);
        foreach (var name in source.Names)
            using (source.ReadRaw(name)) { }
    }

    [Fact]
    public void Malicious_pickle_calling_os_system_is_refused_and_nothing_runs()
    {
        File.Delete(CheckpointAssets.PwnedMarker);

        Refusal(CheckpointAssets.MaliciousOsSystemBin).Should()
            .Contain("refusing to load malicious-os-system.bin: it references os.system");
        File.Exists(CheckpointAssets.PwnedMarker).Should().BeFalse("the command in the pickle must never run");
    }

    [Fact]
    public void Builtins_eval_through_STACK_GLOBAL_is_refused()
    {
        var pickle = new PickleBuilder().Proto(4).ShortUnicode("builtins").ShortUnicode("eval").Op(0x93)
            .ShortUnicode("__import__('os').system('echo pwned')").Tuple1().Reduce().Stop().ToArray();

        Refusal(TorchArchive.Build(pickle)).Should().Contain("it references builtins.eval");
    }

    [Theory]
    [InlineData("torch", "load")]
    [InlineData("torch.serialization", "_load")]
    [InlineData("subprocess", "Popen")]
    [InlineData("collections", "defaultdict")]
    [InlineData("transformers.models.bert.modeling_bert", "BertForSequenceClassification")]
    public void Any_global_outside_the_allow_list_is_refused(string module, string name)
    {
        var pickle = new PickleBuilder().Proto().Global(module, name).EmptyTuple().Reduce().Stop().ToArray();

        Refusal(TorchArchive.Build(pickle)).Should().Contain($"it references {module}.{name}");
    }

    [Fact]
    public void Calling_an_allowed_storage_class_is_refused()
    {
        var pickle = new PickleBuilder().Proto().Global("torch", "FloatStorage").Mark().Int(10).Tuple().Reduce().Stop().ToArray();

        Refusal(TorchArchive.Build(pickle)).Should().Contain("calls torch.FloatStorage, which is not a constructor this reader allows");
    }

    [Theory]
    [InlineData(0x81, "0x81")] // NEWOBJ
    [InlineData((byte)'i', "0x69")] // INST
    [InlineData((byte)'o', "0x6f")] // OBJ
    [InlineData(0x82, "0x82")] // EXT1 (the copyreg extension registry)
    [InlineData((byte)'P', "0x50")] // PERSID (text)
    public void Opcodes_that_build_arbitrary_objects_are_refused(byte opcode, string hex)
    {
        var pickle = new PickleBuilder().Proto().EmptyDict().Op(opcode, 1, 2, 3).Stop().ToArray();

        Refusal(TorchArchive.Build(pickle)).Should().Contain($"opcode {hex} at byte 3");
    }

    [Fact]
    public void Unsupported_element_types_are_named()
    {
        var pickle = PickleBuilder.OneTensorStateDict(4, 0, new[] { 4 }, new[] { 1 }, type: "ComplexFloatStorage");

        Refusal(TorchArchive.Build(pickle, new Dictionary<string, byte[]> { ["0"] = new byte[32] }))
            .Should().Contain("torch.ComplexFloatStorage, an element type this library does not read");
    }

    [Fact]
    public void Legacy_format_is_refused_with_the_conversion_recipe()
    {
        Refusal(CheckpointAssets.LegacyBin).Should().Contain("legacy serialization format")
            .And.Contain("AutoModelForSequenceClassification.from_pretrained(folder).save_pretrained(folder, safe_serialization=True)");
    }

    [Fact]
    public void A_file_that_is_neither_zip_nor_pickle_is_refused()
    {
        Refusal("this is not a checkpoint"u8.ToArray()).Should().Contain("is not a PyTorch checkpoint");
    }

    [Fact]
    public void A_safetensors_file_named_bin_is_recognised()
    {
        var path = Write(File.ReadAllBytes(CheckpointAssets.DTypesSafetensors));

        Refusal(path).Should().Contain("is a safetensors file").And.Contain("model.safetensors");
    }

    [Fact]
    public void A_TorchScript_archive_is_refused()
    {
        var zip = TorchArchive.Build(new[] { ("model/constants.pkl", new byte[] { 0x80, 2, (byte)')', (byte)'.' }), ("model/code/__torch__.py", "x"u8.ToArray()) });

        Refusal(zip).Should().Contain("TorchScript archive");
    }

    [Fact]
    public void A_zip_without_data_pkl_is_refused()
    {
        Refusal(TorchArchive.Build(new[] { ("readme.txt", "hi"u8.ToArray()) })).Should().Contain("without a <name>/data.pkl record");
    }

    [Theory]
    [InlineData(10)]
    [InlineData(200)]
    [InlineData(1000)]
    [InlineData(2500)]
    [InlineData(3880)]
    public void Truncated_zip_is_refused(int length)
    {
        var bytes = File.ReadAllBytes(CheckpointAssets.DTypesBin)[..length];

        Refusal(bytes).Should().Contain("zip archive is damaged");
    }

    [Fact]
    public void Every_truncation_of_the_pickle_is_refused()
    {
        var entries = TorchArchive.ReadEntries(CheckpointAssets.DTypesBin);
        var pickle = entries.Single(e => e.Name.EndsWith("/data.pkl", StringComparison.Ordinal)).Data;
        new RestrictedUnpickler(pickle, "data.pkl", AnyStorage).Load().Should().BeOfType<PickleDict>("the whole pickle is valid");

        for (int length = 0; length < pickle.Length; length++)
        {
            var cut = pickle[..length];
            FluentActions.Invoking(() => new RestrictedUnpickler(cut, "data.pkl", AnyStorage).Load())
                .Should().Throw<CheckpointFormatException>($"a pickle cut to {length} bytes has no STOP");
        }
    }

    [Fact]
    public void A_truncated_pickle_inside_the_archive_is_refused()
    {
        var entries = TorchArchive.ReadEntries(CheckpointAssets.DTypesBin);
        var cut = entries.Select(e => e.Name.EndsWith("/data.pkl", StringComparison.Ordinal) ? (e.Name, e.Data[..^1]) : e);

        Refusal(TorchArchive.Build(cut)).Should().Contain("the pickle ends without a STOP opcode");
    }

    static TorchStorage AnyStorage(string key, TorchElementType type, long count) => new(key, "data/" + key, type, count);

    [Fact]
    public void A_corrupted_local_file_header_is_refused()
    {
        var bytes = File.ReadAllBytes(CheckpointAssets.DTypesBin);
        int header = bytes.AsSpan().IndexOf("dtypes/data/11"u8) - 30; // the local header's fixed part is 30 bytes
        bytes.AsSpan(header, 4).SequenceEqual("PK\x03\x04"u8).Should().BeTrue();
        bytes[header + 2] = 0x07;

        Refusal(bytes).Should().Contain("zip archive is damaged");
    }

    [Fact]
    public void A_corrupted_central_directory_is_refused()
    {
        var bytes = File.ReadAllBytes(CheckpointAssets.DTypesBin);
        int central = bytes.AsSpan().IndexOf("PK\x01\x02"u8);
        bytes[central + 3] = 0x09;

        Refusal(bytes).Should().Contain("zip archive is damaged");
    }

    [Fact]
    public void String_length_past_the_end_of_the_pickle_is_refused()
    {
        var pickle = new PickleBuilder().Proto().EmptyDict().Op((byte)'X', 0xff, 0xff, 0xff, 0x7f, (byte)'a').Stop().ToArray();

        Refusal(TorchArchive.Build(pickle)).Should().Contain("needs 2147483647 bytes but only 2 remain");
    }

    [Fact]
    public void Memo_read_of_an_entry_never_stored_is_refused()
    {
        var pickle = new PickleBuilder().Proto().Op((byte)'j', 0x40, 0x42, 0x0f, 0x00).Stop().ToArray();

        Refusal(TorchArchive.Build(pickle)).Should().Contain("reads entry 1000000, which was never stored");
    }

    [Fact]
    public void Stack_underflow_is_refused()
    {
        var pickle = new PickleBuilder().Proto().SetItem().Stop().ToArray();

        Refusal(TorchArchive.Build(pickle)).Should().Contain("needs a value but the stack is empty");
    }

    [Fact]
    public void A_pickle_that_is_not_a_dict_is_refused()
    {
        var pickle = new PickleBuilder().Proto().Mark().Int(1).Tuple().Stop().ToArray();

        Refusal(TorchArchive.Build(pickle)).Should().Contain("not a state dict");
    }

    [Fact]
    public void A_nested_checkpoint_dict_is_refused_naming_the_key()
    {
        var pickle = new PickleBuilder().Proto().EmptyDict().Unicode("state_dict").EmptyDict().SetItem().Stop().ToArray();

        Refusal(TorchArchive.Build(pickle)).Should().Contain("something other than a tensor under 'state_dict'");
    }

    [Fact]
    public void Duplicate_tensor_names_are_refused()
    {
        var tensor = new PickleBuilder().Tensor(p => p.Storage("FloatStorage", "0", 4), 0, new[] { 4 }, new[] { 1 }).ToArray();
        var pickle = new PickleBuilder().Proto().EmptyDict().Mark().Unicode("t").Op(tensor).Unicode("t").Op(tensor).SetItems().Stop().ToArray();

        Refusal(TorchArchive.Build(pickle, new Dictionary<string, byte[]> { ["0"] = new byte[16] })).Should().Contain("holds 't' twice");
    }

    [Fact]
    public void A_missing_storage_entry_is_refused()
    {
        var pickle = PickleBuilder.OneTensorStateDict(4, 0, new[] { 4 }, new[] { 1 });

        Refusal(TorchArchive.Build(pickle)).Should().Contain("references storage '0', but the archive has no entry archive/data/0");
    }

    [Fact]
    public void A_storage_entry_shorter_than_its_declared_size_is_refused()
    {
        var pickle = PickleBuilder.OneTensorStateDict(4, 0, new[] { 4 }, new[] { 1 });

        Refusal(TorchArchive.Build(pickle, new Dictionary<string, byte[]> { ["0"] = new byte[12] }))
            .Should().Contain("storage '0' should hold 4 × FloatStorage but its entry archive/data/0 has only 12 bytes");
    }

    [Theory]
    [InlineData(0, new[] { 5 }, new[] { 1 }, "reaches element 4 of storage '0', which holds 4")]
    [InlineData(2, new[] { 3 }, new[] { 1 }, "reaches element 4 of storage '0', which holds 4")]
    [InlineData(0, new[] { 2, 2 }, new[] { 3, 1 }, "reaches element 4 of storage '0', which holds 4")]
    [InlineData(0, new[] { 1000000 }, new[] { 0 }, "overlapping (stride-0) views are not supported")]
    [InlineData(0, new[] { 2, 2 }, new[] { 1 }, "has 2 sizes but 1 strides")]
    [InlineData(0, new[] { 65536, 65536, 65536, 65536 }, new[] { 1, 1, 1, 1 }, "overflows 64-bit indexing")]
    public void A_tensor_view_reaching_past_its_storage_is_refused(int offset, int[] size, int[] stride, string expected)
    {
        var pickle = PickleBuilder.OneTensorStateDict(4, offset, size, stride);

        Refusal(TorchArchive.Build(pickle, new Dictionary<string, byte[]> { ["0"] = new byte[16] })).Should().Contain(expected);
    }

    [Fact]
    public void Negative_sizes_and_strides_are_refused()
    {
        var pickle = PickleBuilder.OneTensorStateDict(4, 0, new[] { -1 }, new[] { 1 });

        Refusal(TorchArchive.Build(pickle, new Dictionary<string, byte[]> { ["0"] = new byte[16] }))
            .Should().Contain("size[0] = -1, not a non-negative integer");
    }

    [Fact]
    public void A_storage_declared_with_two_types_is_refused()
    {
        var first = new PickleBuilder().Tensor(p => p.Storage("FloatStorage", "0", 4), 0, new[] { 4 }, new[] { 1 }).ToArray();
        var second = new PickleBuilder().Tensor(p => p.Storage("LongStorage", "0", 2), 0, new[] { 2 }, new[] { 1 }).ToArray();
        var pickle = new PickleBuilder().Proto().EmptyDict().Mark().Unicode("a").Op(first).Unicode("b").Op(second).SetItems().Stop().ToArray();

        Refusal(TorchArchive.Build(pickle, new Dictionary<string, byte[]> { ["0"] = new byte[16] }))
            .Should().Contain("storage '0' is referenced as 4 × FloatStorage and as 2 × LongStorage");
    }

    [Fact]
    public void A_huge_declared_storage_is_refused_before_anything_is_allocated()
    {
        // 2^31 float elements (8 GB) declared over a 16-byte entry.
        var pickle = PickleBuilder.OneTensorStateDict(int.MaxValue, 0, new[] { int.MaxValue }, new[] { 1 });

        Refusal(TorchArchive.Build(pickle, new Dictionary<string, byte[]> { ["0"] = new byte[16] })).Should().Contain("has only 16 bytes");
    }

    [Fact]
    public void An_unknown_byteorder_is_refused()
    {
        var entries = TorchArchive.ReadEntries(CheckpointAssets.DTypesBin);
        entries.Add((TorchArchive.Prefix(entries) + "/byteorder", "middle"u8.ToArray()));

        Refusal(TorchArchive.Build(entries)).Should().Contain("byteorder record says 'middle'");
    }

    [Fact]
    public void Deeply_nested_pickles_are_bounded_by_the_stack_cap()
    {
        // A million and more MARKs: refused when the mark stack reaches its cap, not by running out of memory.
        var pickle = new PickleBuilder().Proto().Op(Enumerable.Repeat((byte)'(', (1 << 20) + 10).ToArray()).Stop().ToArray();

        Refusal(TorchArchive.Build(pickle)).Should().Contain("nested MARKs");
    }
}
