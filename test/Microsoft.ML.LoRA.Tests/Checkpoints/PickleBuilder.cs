using System.Buffers.Binary;
using System.Text;

namespace Microsoft.ML.LoRA.Tests.Checkpoints;

/// <summary>Writes pickle opcodes one by one, so tests can build the pickles a hostile file would hold.</summary>
public sealed class PickleBuilder
{
    readonly List<byte> _bytes = new();

    public PickleBuilder Op(params byte[] bytes)
    {
        _bytes.AddRange(bytes);
        return this;
    }

    public PickleBuilder Proto(int protocol = 2) => Op(0x80, (byte)protocol);
    public PickleBuilder Global(string module, string name) => Op((byte)'c').Op(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));
    public PickleBuilder Unicode(string text)
    {
        var utf8 = Encoding.UTF8.GetBytes(text);
        var length = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(length, (uint)utf8.Length);
        return Op((byte)'X').Op(length).Op(utf8);
    }
    public PickleBuilder ShortUnicode(string text) => Op(0x8c, (byte)Encoding.UTF8.GetByteCount(text)).Op(Encoding.UTF8.GetBytes(text));
    public PickleBuilder Int(int value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, value);
        return Op((byte)'J').Op(bytes);
    }
    public PickleBuilder Mark() => Op((byte)'(');
    public PickleBuilder Tuple() => Op((byte)'t');
    public PickleBuilder Tuple1() => Op(0x85);
    public PickleBuilder Tuple2() => Op(0x86);
    public PickleBuilder EmptyTuple() => Op((byte)')');
    public PickleBuilder EmptyDict() => Op((byte)'}');
    public PickleBuilder SetItem() => Op((byte)'s');
    public PickleBuilder SetItems() => Op((byte)'u');
    public PickleBuilder Reduce() => Op((byte)'R');
    public PickleBuilder PersistentId() => Op((byte)'Q');
    public PickleBuilder False() => Op(0x89);
    public PickleBuilder Stop() => Op((byte)'.');

    /// <summary>('storage', torch.&lt;type&gt;, key, 'cpu', count) BINPERSID.</summary>
    public PickleBuilder Storage(string type, string key, int count) =>
        Mark().Unicode("storage").Global("torch", type).Unicode(key).Unicode("cpu").Int(count).Tuple().PersistentId();

    /// <summary>_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()) for a storage built by <paramref name="storage"/>.</summary>
    public PickleBuilder Tensor(Action<PickleBuilder> storage, int offset, int[] size, int[] stride)
    {
        Global("torch._utils", "_rebuild_tensor_v2").Mark();
        storage(this);
        Int(offset);
        Mark();
        foreach (var s in size) Int(s);
        Tuple().Mark();
        foreach (var s in stride) Int(s);
        return Tuple().False().Global("collections", "OrderedDict").EmptyTuple().Reduce().Tuple().Reduce();
    }

    /// <summary>{name: tensor} for one float tensor over storage "0".</summary>
    public static byte[] OneTensorStateDict(int count, int offset, int[] size, int[] stride, string type = "FloatStorage") =>
        new PickleBuilder().Proto().EmptyDict().Unicode("t")
            .Tensor(p => p.Storage(type, "0", count), offset, size, stride).SetItem().Stop().ToArray();

    public byte[] ToArray() => _bytes.ToArray();
}
