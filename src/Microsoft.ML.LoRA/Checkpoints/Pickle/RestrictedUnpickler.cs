using System.Buffers.Binary;
using System.Text;

namespace Microsoft.ML.LoRA.Checkpoints.Pickle;

/// <summary>
/// Reads the pickle of a PyTorch state dict (<c>data.pkl</c> of a torch.save archive) without ever executing code.
/// It implements only the opcodes a state dict needs and resolves GLOBALs against a fixed allow-list
/// (<c>collections.OrderedDict</c>, <c>torch._utils._rebuild_tensor_v2</c> / <c>_rebuild_parameter</c>, the
/// <c>torch.*Storage</c> classes); any other GLOBAL makes it refuse the file. Nothing is ever called: REDUCE on an
/// allowed name builds one of our own inert values (<see cref="PickleDict"/>, <see cref="TorchTensorRef"/>).
/// Every length is checked against the remaining bytes before it is used, and the stack, mark stack and memo are
/// capped, so hostile input ends in a <see cref="CheckpointFormatException"/>, in time linear in its size.
/// </summary>
internal sealed class RestrictedUnpickler
{
    /// <summary>Cap on the stack, the mark stack and the memo (a BERT-large state dict needs a few thousand).</summary>
    public const int MaxItems = 1 << 20;

    /// <summary>Most dimensions a tensor may have.</summary>
    public const int MaxDimensions = 16;

    const string OrderedDict = "collections.OrderedDict";
    const string RebuildTensorV2 = "torch._utils._rebuild_tensor_v2";
    const string RebuildParameter = "torch._utils._rebuild_parameter";

    readonly byte[] _data;
    readonly string _path;
    readonly Func<string, TorchElementType, long, TorchStorage> _loadStorage;
    readonly List<object?> _stack = new();
    readonly List<int> _marks = new();
    readonly Dictionary<long, object?> _memo = new();
    readonly Dictionary<string, TorchStorage> _storages = new(StringComparer.Ordinal);
    int _pos;

    /// <param name="data">The pickle bytes.</param>
    /// <param name="path">The file named in error messages.</param>
    /// <param name="loadStorage">
    /// Resolves a persistent storage id (key, element type, element count) to a storage, checking the archive holds
    /// its bytes; called once per key.
    /// </param>
    public RestrictedUnpickler(byte[] data, string path, Func<string, TorchElementType, long, TorchStorage> loadStorage)
    {
        _data = data;
        _path = path;
        _loadStorage = loadStorage;
    }

    /// <summary>Runs the pickle to its STOP and returns the object it built.</summary>
    public object? Load()
    {
        while (true)
        {
            if (_pos >= _data.Length) throw Bad("the pickle ends without a STOP opcode");
            int at = _pos;
            byte op = _data[_pos++];
            switch (op)
            {
                case 0x80: // PROTO
                    {
                        int protocol = ReadByte();
                        if (protocol > 5) throw Bad($"pickle protocol {protocol} is not a known protocol (at byte {at})");
                        break;
                    }
                case 0x95: // FRAME (protocol 4): an 8-byte length hint; the frame's opcodes follow inline
                    Take(8);
                    break;
                case (byte)'.': // STOP
                    if (_stack.Count == 0) throw Bad("STOP with an empty stack");
                    if (_marks.Count > 0) throw Bad("STOP with an unclosed MARK");
                    return _stack[^1];
                case (byte)'(': // MARK
                    if (_marks.Count >= MaxItems) throw Bad($"more than {MaxItems} nested MARKs");
                    _marks.Add(_stack.Count);
                    break;
                case (byte)')': Push(Array.Empty<object?>()); break; // EMPTY_TUPLE
                case (byte)']': Push(new List<object?>()); break; // EMPTY_LIST
                case (byte)'}': Push(new PickleDict()); break; // EMPTY_DICT
                case (byte)'N': Push(null); break; // NONE
                case 0x88: Push(true); break; // NEWTRUE
                case 0x89: Push(false); break; // NEWFALSE
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break; // BININT
                case (byte)'K': Push((long)ReadByte()); break; // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break; // BININT2
                case 0x8a: Push(ReadLong1(at)); break; // LONG1
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break; // BINFLOAT
                case (byte)'X': Push(ReadUtf8(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)), at)); break; // BINUNICODE
                case 0x8c: Push(ReadUtf8(ReadByte(), at)); break; // SHORT_BINUNICODE
                case (byte)'U': Push(Encoding.Latin1.GetString(Take(ReadByte()))); break; // SHORT_BINSTRING
                case (byte)'T': // BINSTRING
                    {
                        int length = BinaryPrimitives.ReadInt32LittleEndian(Take(4));
                        if (length < 0) throw Bad($"BINSTRING with negative length {length} at byte {at}");
                        Push(Encoding.Latin1.GetString(Take(length)));
                        break;
                    }
                case (byte)'q': Memoize(ReadByte()); break; // BINPUT
                case (byte)'r': Memoize(BinaryPrimitives.ReadUInt32LittleEndian(Take(4))); break; // LONG_BINPUT
                case 0x94: Memoize(_memo.Count); break; // MEMOIZE
                case (byte)'h': Push(Recall(ReadByte(), at)); break; // BINGET
                case (byte)'j': Push(Recall(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)), at)); break; // LONG_BINGET
                case (byte)'t': Push(PopMark(at).ToArray()); break; // TUPLE
                case 0x85: Push(new[] { Pop(at) }); break; // TUPLE1
                case 0x86: // TUPLE2
                    {
                        var b = Pop(at);
                        var a = Pop(at);
                        Push(new[] { a, b });
                        break;
                    }
                case 0x87: // TUPLE3
                    {
                        var c = Pop(at);
                        var b = Pop(at);
                        var a = Pop(at);
                        Push(new[] { a, b, c });
                        break;
                    }
                case (byte)'l': Push(PopMark(at)); break; // LIST
                case (byte)'d': // DICT
                    {
                        var dict = new PickleDict();
                        AddPairs(dict, PopMark(at), at);
                        Push(dict);
                        break;
                    }
                case (byte)'s': // SETITEM
                    {
                        var value = Pop(at);
                        var key = Pop(at);
                        Peek<PickleDict>("SETITEM", at).Items.Add(new(key, value));
                        break;
                    }
                case (byte)'u': // SETITEMS
                    {
                        var items = PopMark(at);
                        AddPairs(Peek<PickleDict>("SETITEMS", at), items, at);
                        break;
                    }
                case (byte)'a': // APPEND
                    {
                        var value = Pop(at);
                        Peek<List<object?>>("APPEND", at).Add(value);
                        break;
                    }
                case (byte)'e': // APPENDS
                    {
                        var items = PopMark(at);
                        Peek<List<object?>>("APPENDS", at).AddRange(items);
                        break;
                    }
                case (byte)'0': Pop(at); break; // POP
                case (byte)'1': PopMark(at); break; // POP_MARK
                case (byte)'2': // DUP
                    {
                        var top = Pop(at);
                        Push(top);
                        Push(top);
                        break;
                    }
                case (byte)'c': // GLOBAL
                    {
                        var module = ReadLine(at);
                        var name = ReadLine(at);
                        Push(Resolve(module, name));
                        break;
                    }
                case 0x93: // STACK_GLOBAL
                    {
                        var name = Pop(at);
                        var module = Pop(at);
                        if (module is not string m || name is not string n) throw Bad($"STACK_GLOBAL at byte {at} is not given two strings");
                        Push(Resolve(m, n));
                        break;
                    }
                case (byte)'R': // REDUCE
                    {
                        var args = Pop(at);
                        var callable = Pop(at);
                        Push(Reduce(callable, args, at));
                        break;
                    }
                case (byte)'Q': Push(PersistentLoad(Pop(at), at)); break; // BINPERSID
                case (byte)'b': // BUILD
                    {
                        Pop(at); // the state: for an OrderedDict, its attributes (state_dict()'s _metadata), not needed
                        Peek<PickleDict>("BUILD", at);
                        break;
                    }
                default:
                    throw Bad($"the pickle uses opcode 0x{op:x2} at byte {at}, which a PyTorch state dict does not need and this reader does not run");
            }
        }
    }

    object Resolve(string module, string name)
    {
        var full = $"{module}.{name}";
        if (full is OrderedDict or RebuildTensorV2 or RebuildParameter) return new PickleGlobal(module, name);
        if (module is "torch" or "torch.storage" && TorchElementType.ByStorageName.TryGetValue(name, out var type)) return type;
        if ((module is "torch" or "torch.storage") && name.EndsWith("Storage", StringComparison.Ordinal) && !name.Contains('.'))
            throw Bad($"it holds a {full}, an element type this library does not read (it reads float, half, bfloat16, double and integer tensors)");
        throw Bad($"refusing to load {Path.GetFileName(_path)}: it references {full}, which a PyTorch state dict never needs (only tensors, storages and " +
                  "collections.OrderedDict are allowed); unpickling it in Python could run arbitrary code");
    }

    object Reduce(object? callable, object? args, int at)
    {
        if (args is not object?[] tuple) throw Bad($"REDUCE at byte {at} is given {Describe(args)} instead of an argument tuple");
        switch (callable)
        {
            case PickleGlobal { FullName: OrderedDict }:
                {
                    var dict = new PickleDict();
                    if (tuple.Length == 0) return dict;
                    if (tuple.Length == 1 && tuple[0] is List<object?> pairs)
                    {
                        foreach (var pair in pairs)
                        {
                            if (pair is not object?[] { Length: 2 } kv) throw Bad($"OrderedDict at byte {at} is given an item that is not a (key, value) pair");
                            dict.Items.Add(new(kv[0], kv[1]));
                        }
                        return dict;
                    }
                    throw Bad($"OrderedDict at byte {at} is called with unexpected arguments");
                }
            case PickleGlobal { FullName: RebuildTensorV2 }:
                return RebuildTensor(tuple, at);
            case PickleGlobal { FullName: RebuildParameter }:
                if (tuple.Length is < 2 or > 3 || tuple[0] is not TorchTensorRef parameter)
                    throw Bad($"_rebuild_parameter at byte {at} is not given a tensor");
                return parameter;
            default:
                throw Bad($"REDUCE at byte {at} calls {Describe(callable)}, which is not a constructor this reader allows");
        }
    }

    /// <summary>_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]).</summary>
    TorchTensorRef RebuildTensor(object?[] args, int at)
    {
        string where = $"_rebuild_tensor_v2 at byte {at}";
        if (args.Length is < 6 or > 7) throw Bad($"{where} has {args.Length} arguments, not 6 or 7");
        if (args[0] is not TorchStorage storage) throw Bad($"{where} is given {Describe(args[0])} instead of a storage");
        if (args[1] is not long offset || offset < 0) throw Bad($"{where} has storage offset {Describe(args[1])}, not a non-negative integer");
        var shape = Dimensions(args[2], "size", where);
        var stride = Dimensions(args[3], "stride", where);
        if (shape.Length != stride.Length) throw Bad($"{where} has {shape.Length} sizes but {stride.Length} strides");
        if (args[4] is not bool) throw Bad($"{where} has requires_grad {Describe(args[4])}, not a bool");
        if (args[5] is not PickleDict) throw Bad($"{where} has backward hooks {Describe(args[5])}, not an OrderedDict");

        var shapeText = $"[{string.Join(", ", shape)}]";
        long elements = 1, span = 1;
        try
        {
            checked
            {
                foreach (var size in shape) elements *= size;
                for (int i = 0; i < shape.Length; i++)
                    if (shape[i] > 0) span += (shape[i] - 1) * stride[i];
                if (elements > 0) span += offset;
            }
        }
        catch (OverflowException)
        {
            throw Bad($"{where}: a tensor of size {shapeText} and stride [{string.Join(", ", stride)}] overflows 64-bit indexing");
        }
        if (elements > 0 && span > storage.ElementCount)
            throw Bad($"{where}: a tensor of size {shapeText}, stride [{string.Join(", ", stride)}] and offset {offset} reaches element {span - 1} of storage '{storage.Key}', which holds {storage.ElementCount}");
        if (elements == 0 && offset > storage.ElementCount)
            throw Bad($"{where}: storage offset {offset} is past the end of storage '{storage.Key}' ({storage.ElementCount} elements)");
        if (elements > storage.ElementCount)
            throw Bad($"{where}: a tensor of size {shapeText} has more elements than its storage '{storage.Key}' ({storage.ElementCount}); overlapping (stride-0) views are not supported");
        return new TorchTensorRef(storage, offset, shape, stride);
    }

    long[] Dimensions(object? value, string what, string where)
    {
        if (value is not object?[] tuple) throw Bad($"{where} has {what} {Describe(value)}, not a tuple");
        if (tuple.Length > MaxDimensions) throw Bad($"{where} has {tuple.Length} dimensions (at most {MaxDimensions})");
        var result = new long[tuple.Length];
        for (int i = 0; i < tuple.Length; i++)
        {
            if (tuple[i] is not long d || d < 0) throw Bad($"{where} has {what}[{i}] = {Describe(tuple[i])}, not a non-negative integer");
            result[i] = d;
        }
        return result;
    }

    /// <summary>BINPERSID: ('storage', storage type, key, location, element count).</summary>
    TorchStorage PersistentLoad(object? pid, int at)
    {
        if (pid is not object?[] { Length: 5 } t || t[0] is not "storage")
            throw Bad($"persistent id at byte {at} is {Describe(pid)}, not ('storage', type, key, location, size)");
        if (t[1] is not TorchElementType type) throw Bad($"persistent id at byte {at} names {Describe(t[1])} instead of a storage type");
        if (t[2] is not string key || key.Length == 0) throw Bad($"persistent id at byte {at} has key {Describe(t[2])}, not a non-empty string");
        if (t[3] is not string) throw Bad($"persistent id at byte {at} has location {Describe(t[3])}, not a string");
        if (t[4] is not long count || count < 0) throw Bad($"persistent id at byte {at} has size {Describe(t[4])}, not a non-negative integer");
        if (_storages.TryGetValue(key, out var known))
        {
            if (known.ElementType != type || known.ElementCount != count)
                throw Bad($"storage '{key}' is referenced as {known.ElementCount} × {known.ElementType.StorageName} and as {count} × {type.StorageName}");
            return known;
        }
        var storage = _loadStorage(key, type, count);
        _storages[key] = storage;
        return storage;
    }

    void AddPairs(PickleDict dict, List<object?> items, int at)
    {
        if (items.Count % 2 != 0) throw Bad($"SETITEMS at byte {at} has an odd number of items");
        for (int i = 0; i < items.Count; i += 2) dict.Items.Add(new(items[i], items[i + 1]));
    }

    void Push(object? value)
    {
        if (_stack.Count >= MaxItems) throw Bad($"the pickle stack grows past {MaxItems} items");
        _stack.Add(value);
    }

    object? Pop(int at)
    {
        if (_stack.Count == 0 || (_marks.Count > 0 && _stack.Count == _marks[^1]))
            throw Bad($"opcode 0x{_data[at]:x2} at byte {at} needs a value but the stack is empty");
        var value = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return value;
    }

    T Peek<T>(string opcode, int at) where T : class
    {
        if (_stack.Count == 0 || (_marks.Count > 0 && _stack.Count == _marks[^1]))
            throw Bad($"{opcode} at byte {at} needs a value but the stack is empty");
        return _stack[^1] as T ?? throw Bad($"{opcode} at byte {at} applies to {Describe(_stack[^1])}, which it does not support");
    }

    List<object?> PopMark(int at)
    {
        if (_marks.Count == 0) throw Bad($"opcode 0x{_data[at]:x2} at byte {at} needs a MARK but there is none");
        int mark = _marks[^1];
        _marks.RemoveAt(_marks.Count - 1);
        var items = _stack.GetRange(mark, _stack.Count - mark);
        _stack.RemoveRange(mark, _stack.Count - mark);
        return items;
    }

    void Memoize(long index)
    {
        if (_stack.Count == 0 || (_marks.Count > 0 && _stack.Count == _marks[^1])) throw Bad("a memo PUT with an empty stack");
        if (_memo.Count >= MaxItems && !_memo.ContainsKey(index)) throw Bad($"the pickle memo grows past {MaxItems} entries");
        _memo[index] = _stack[^1];
    }

    object? Recall(long index, int at) =>
        _memo.TryGetValue(index, out var value) ? value : throw Bad($"memo GET at byte {at} reads entry {index}, which was never stored");

    int ReadByte()
    {
        if (_pos >= _data.Length) throw Bad($"the pickle ends in the middle of an opcode (byte {_pos})");
        return _data[_pos++];
    }

    ReadOnlySpan<byte> Take(long count)
    {
        if (count > _data.Length - _pos)
            throw Bad($"an opcode at byte {_pos} needs {count} bytes but only {_data.Length - _pos} remain");
        var span = new ReadOnlySpan<byte>(_data, _pos, (int)count);
        _pos += (int)count;
        return span;
    }

    string ReadUtf8(long length, int at)
    {
        var bytes = Take(length);
        try
        {
            return new UTF8Encoding(false, true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Bad($"string at byte {at} is not valid UTF-8");
        }
    }

    /// <summary>A GLOBAL operand: ASCII up to a newline, at most 256 characters.</summary>
    string ReadLine(int at)
    {
        int limit = Math.Min(_data.Length, _pos + 257);
        int end = Array.IndexOf(_data, (byte)'\n', _pos, limit - _pos);
        if (end < 0) throw Bad($"GLOBAL at byte {at} has no newline-terminated name within 256 bytes");
        var line = Encoding.ASCII.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        if (line.Length == 0 || line.Any(ch => ch < 0x20 || ch > 0x7e)) throw Bad($"GLOBAL at byte {at} names '{line}', which is not a printable module or name");
        return line;
    }

    long ReadLong1(int at)
    {
        int n = ReadByte();
        if (n > 8) throw Bad($"LONG1 at byte {at} holds a {n}-byte integer; at most 64 bits are supported");
        var bytes = Take(n);
        if (n == 0) return 0;
        long value = (bytes[n - 1] & 0x80) != 0 ? -1 : 0; // sign-extend two's complement, little-endian
        for (int i = n - 1; i >= 0; i--) value = (value << 8) | bytes[i];
        return value;
    }

    CheckpointFormatException Bad(string problem) => new(_path, problem);

    static string Describe(object? value) => value switch
    {
        null => "None",
        string s => $"'{(s.Length > 40 ? s[..40] + "..." : s)}'",
        long l => l.ToString(),
        double d => d.ToString("R"),
        bool b => b ? "True" : "False",
        object?[] t => $"a {t.Length}-tuple",
        List<object?> => "a list",
        PickleDict => "a dict",
        PickleGlobal g => g.FullName,
        TorchElementType e => $"torch.{e.StorageName}",
        TorchStorage s => $"storage '{s.Key}'",
        TorchTensorRef => "a tensor",
        _ => value.GetType().Name,
    };
}
