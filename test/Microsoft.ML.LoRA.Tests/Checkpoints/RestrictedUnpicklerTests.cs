using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Checkpoints.Pickle;

namespace Microsoft.ML.LoRA.Tests.Checkpoints;

/// <summary>The restricted unpickler decodes the opcodes a state dict may use exactly as Python's pickle does.</summary>
public sealed class RestrictedUnpicklerTests
{
    static object? Load(byte[] pickle) =>
        new RestrictedUnpickler(pickle, "data.pkl", (key, type, count) => new TorchStorage(key, "data/" + key, type, count)).Load();

    static Dictionary<string, object?> LoadDict(byte[] pickle) =>
        Load(pickle).Should().BeOfType<PickleDict>().Subject.Items.ToDictionary(kv => (string)kv.Key!, kv => kv.Value);

    [Theory]
    [InlineData(new byte[] { }, 0L)]
    [InlineData(new byte[] { 0x7f }, 127L)]
    [InlineData(new byte[] { 0x80 }, -128L)]
    [InlineData(new byte[] { 0x00, 0x80 }, -32768L)]
    [InlineData(new byte[] { 0x00, 0x80, 0x00 }, 32768L)]
    [InlineData(new byte[] { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, -1L)]
    [InlineData(new byte[] { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f }, long.MaxValue)]
    public void LONG1_decodes_little_endian_twos_complement(byte[] bytes, long expected)
    {
        var pickle = new PickleBuilder().Proto().EmptyDict().Unicode("n").Op(0x8a, (byte)bytes.Length).Op(bytes).SetItem().Stop().ToArray();

        LoadDict(pickle)["n"].Should().Be(expected);
    }

    [Fact]
    public void LONG1_wider_than_64_bits_is_refused()
    {
        var pickle = new PickleBuilder().Proto().Op(0x8a, 9).Op(new byte[9]).Stop().ToArray();

        FluentActions.Invoking(() => Load(pickle)).Should().Throw<CheckpointFormatException>().WithMessage("*9-byte integer*");
    }

    [Fact]
    public void Small_integers_floats_booleans_and_None_decode()
    {
        var pickle = new PickleBuilder().Proto().EmptyDict().Mark()
            .Unicode("k").Op((byte)'K', 200)
            .Unicode("m").Op((byte)'M', 0x34, 0x12)
            .Unicode("j").Int(-5)
            .Unicode("g").Op((byte)'G', 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18)
            .Unicode("t").Op(0x88).Unicode("f").Op(0x89).Unicode("none").Op((byte)'N')
            .SetItems().Stop().ToArray();

        LoadDict(pickle).Should().BeEquivalentTo(new Dictionary<string, object?>
        {
            ["k"] = 200L, ["m"] = 0x1234L, ["j"] = -5L, ["g"] = Math.PI, ["t"] = true, ["f"] = false, ["none"] = null,
        });
    }

    [Fact]
    public void Memo_gets_return_the_same_object()
    {
        // {'a': [], 'b': <memo 0>} then APPEND to 'b' shows on 'a': one list, two references.
        var pickle = new PickleBuilder().Proto().EmptyDict().Unicode("a").Op((byte)']', (byte)'q', 0).SetItem()
            .Unicode("b").Op((byte)'h', 0).SetItem()
            .Op((byte)'h', 0).Int(7).Op((byte)'a', (byte)'0').Stop().ToArray();

        var dict = LoadDict(pickle);

        dict["a"].Should().BeSameAs(dict["b"]);
        dict["a"].Should().BeEquivalentTo(new List<object?> { 7L });
    }

    [Fact]
    public void Protocol_4_framing_memoize_and_stack_global_build_a_state_dict()
    {
        var pickle = new PickleBuilder().Proto(4).Op(0x95).Op(new byte[8])
            .ShortUnicode("collections").Op(0x94).ShortUnicode("OrderedDict").Op(0x94).Op(0x93).Op(0x94).EmptyTuple().Reduce().Op(0x94)
            .ShortUnicode("w").Tensor(p => p.Storage("HalfStorage", "0", 6), 0, new[] { 2, 3 }, new[] { 1, 2 }).SetItem()
            .Stop().ToArray();

        var tensor = LoadDict(pickle)["w"].Should().BeOfType<TorchTensorRef>().Subject;

        tensor.Shape.Should().Equal(2, 3);
        tensor.Stride.Should().Equal(1, 2);
        tensor.Storage.ElementType.StorageName.Should().Be("HalfStorage");
    }

    [Fact]
    public void BUILD_on_a_state_dict_ignores_its_metadata_attribute()
    {
        var pickle = new PickleBuilder().Proto().Global("collections", "OrderedDict").EmptyTuple().Reduce()
            .Unicode("x").Int(1).SetItem()
            .EmptyDict().Unicode("_metadata").EmptyDict().Unicode("").EmptyDict().Unicode("version").Int(1).SetItem().SetItem().SetItem()
            .Op((byte)'b').Stop().ToArray();

        LoadDict(pickle).Should().BeEquivalentTo(new Dictionary<string, object?> { ["x"] = 1L });
    }

    [Fact]
    public void BUILD_on_anything_but_a_dict_is_refused()
    {
        var pickle = new PickleBuilder().Proto().Op((byte)']').EmptyDict().Op((byte)'b').Stop().ToArray();

        FluentActions.Invoking(() => Load(pickle)).Should().Throw<CheckpointFormatException>().WithMessage("*BUILD at byte 4 applies to a list*");
    }

    [Fact]
    public void Untyped_storages_hold_bytes()
    {
        var pickle = new PickleBuilder().Proto().EmptyDict().Unicode("raw")
            .Tensor(p => p.Storage("UntypedStorage", "0", 8), 0, new[] { 8 }, new[] { 1 }).SetItem().Stop().ToArray();

        var tensor = LoadDict(pickle)["raw"].Should().BeOfType<TorchTensorRef>().Subject;

        tensor.Storage.ElementType.ScalarType.Should().Be(global::TorchSharp.torch.ScalarType.Byte);
        tensor.Storage.ElementCount.Should().Be(8);
    }

    [Fact]
    public void A_persistent_id_that_is_not_a_storage_is_refused()
    {
        var pickle = new PickleBuilder().Proto().Unicode("module").PersistentId().Stop().ToArray();

        FluentActions.Invoking(() => Load(pickle)).Should().Throw<CheckpointFormatException>()
            .WithMessage("*persistent id at byte * is 'module', not ('storage', type, key, location, size)*");
    }
}
