using System.Runtime.InteropServices;

namespace Microsoft.ML.LoRA.Export;

/// <summary>ONNX tensor element types (onnx.proto's TensorProto.DataType), those the exporter writes.</summary>
internal enum OnnxType
{
    Float = 1,
    UInt8 = 2,
    Int8 = 3,
    Float16 = 10,
    Int32 = 6,
    Int64 = 7,
    Bool = 9,
}

/// <summary>A node attribute: a name and an int64, float, string, int64 list or float list value.</summary>
internal readonly record struct OnnxAttribute(string Name, object Value)
{
    public static OnnxAttribute Int(string name, long value) => new(name, value);
    public static OnnxAttribute Float(string name, float value) => new(name, value);
    public static OnnxAttribute String(string name, string value) => new(name, value);
    public static OnnxAttribute Ints(string name, params long[] values) => new(name, values);
}

/// <summary>
/// An ONNX graph under construction: initializers (weights and constants), nodes in topological order, the graph's
/// inputs and outputs; <see cref="WriteModel"/> writes the ModelProto. Field numbers are onnx.proto's (IR version 8+).
/// </summary>
internal sealed class OnnxGraph
{
    readonly List<ProtoWriter> _nodes = new();
    readonly List<(string Name, OnnxType Type, long[] Dims, Array Data)> _initializers = new();   // data: float[], Half[], byte[] or long[], not copied
    readonly List<(string Name, OnnxType Type, object[] Dims)> _inputs = new(), _outputs = new();
    readonly HashSet<string> _names = new(StringComparer.Ordinal);
    readonly Dictionary<string, string> _constants = new(StringComparer.Ordinal);
    int _counter;

    public OnnxGraph(int opset) => Opset = opset;

    /// <summary>The default-domain opset the graph is written for.</summary>
    public int Opset { get; }

    /// <summary>Bytes of initializer data so far.</summary>
    public long InitializerBytes => _initializers.Sum(i => (long)RawBytes(i.Data).Length);

    /// <summary>Counts of each operator type used (for tests and reports).</summary>
    public Dictionary<string, int> OperatorCounts { get; } = new(StringComparer.Ordinal);

    string Fresh(string hint)
    {
        string name;
        do name = $"{hint}_{_counter++}"; while (!_names.Add(name));
        return name;
    }

    /// <summary>Declares a graph input; a dimension is a fixed size (long) or a symbolic name (string, dynamic).</summary>
    public string Input(string name, OnnxType type, params object[] dims)
    {
        if (!_names.Add(name)) throw new InvalidOperationException($"duplicate ONNX name {name}");
        _inputs.Add((name, type, dims));
        return name;
    }

    /// <summary>Names the value <paramref name="value"/> as graph output <paramref name="name"/> (through an Identity).</summary>
    public void Output(string value, string name, OnnxType type, params object[] dims)
    {
        if (!_names.Add(name)) throw new InvalidOperationException($"duplicate ONNX name {name}");
        AddNode("Identity", new[] { value }, new[] { name }, Array.Empty<OnnxAttribute>());
        _outputs.Add((name, type, dims));
    }

    /// <summary>A float initializer of shape <paramref name="dims"/> (the array is kept, not copied: do not change it).</summary>
    public string Weight(string hint, float[] data, params long[] dims) => Add(hint, OnnxType.Float, data, dims);

    /// <summary>A float16 initializer of shape <paramref name="dims"/> (kept, not copied).</summary>
    public string Weight(string hint, Half[] data, params long[] dims) => Add(hint, OnnxType.Float16, data, dims);

    /// <summary>An initializer of raw little-endian bytes (kept, not copied).</summary>
    public string Initializer(string hint, OnnxType type, byte[] raw, params long[] dims) => Add(hint, type, raw, dims);

    string Add(string hint, OnnxType type, Array data, long[] dims)
    {
        long count = dims.Aggregate(1L, (a, d) => a * d);
        int bytes = RawBytes(data).Length;
        if (count * SizeOf(type) != bytes)
            throw new ArgumentException($"initializer {hint}: {bytes} bytes for shape [{string.Join(", ", dims)}] of {type}");
        var name = _names.Add(hint) ? hint : Fresh(hint);
        _initializers.Add((name, type, dims, data));
        return name;
    }

    static ReadOnlySpan<byte> RawBytes(Array data) => data switch
    {
        float[] f => MemoryMarshal.AsBytes(f.AsSpan()),
        long[] l => MemoryMarshal.AsBytes(l.AsSpan()),
        Half[] h => MemoryMarshal.AsBytes(h.AsSpan()),
        byte[] b => b,
        _ => throw new ArgumentException($"initializer data of type {data.GetType().Name}"),
    };

    /// <summary>A one-dimensional int64 constant (shared between nodes that ask for the same values).</summary>
    public string Int64s(params long[] values) => Constant("i64", OnnxType.Int64, MemoryMarshal.AsBytes(values.AsSpan()).ToArray(), new long[] { values.Length });


    /// <summary>A scalar int64 constant.</summary>
    public string Int64Scalar(long value) => Constant("i64s", OnnxType.Int64, BitConverter.GetBytes(value), Array.Empty<long>());

    /// <summary>A scalar float constant.</summary>
    public string FloatScalar(float value) => Constant("f32s", OnnxType.Float, BitConverter.GetBytes(value), Array.Empty<long>());

    string Constant(string hint, OnnxType type, byte[] raw, long[] dims)
    {
        var key = $"{type}|{string.Join(",", dims)}|{Convert.ToHexString(raw)}";
        if (_constants.TryGetValue(key, out var existing)) return existing;
        var name = Initializer(Fresh(hint), type, raw, dims);
        _constants[key] = name;
        return name;
    }

    /// <summary>Adds a node with one output and returns the output's name.</summary>
    public string Node(string op, string[] inputs, params OnnxAttribute[] attributes) => Nodes(op, inputs, 1, attributes)[0];

    /// <summary>Adds a node with <paramref name="outputs"/> outputs and returns their names.</summary>
    public string[] Nodes(string op, string[] inputs, int outputs, params OnnxAttribute[] attributes)
    {
        var names = Enumerable.Range(0, outputs).Select(_ => Fresh(op.ToLowerInvariant())).ToArray();
        AddNode(op, inputs, names, attributes);
        return names;
    }

    void AddNode(string op, string[] inputs, string[] outputs, OnnxAttribute[] attributes)
    {
        var node = new ProtoWriter();
        foreach (var input in inputs) node.String(1, input);              // NodeProto.input
        foreach (var output in outputs) node.String(2, output);           // NodeProto.output
        node.String(3, $"{op}_{_nodes.Count}");                           // NodeProto.name
        node.String(4, op);                                               // NodeProto.op_type
        foreach (var a in attributes) node.Message(5, Attribute(a));      // NodeProto.attribute
        _nodes.Add(node);
        OperatorCounts[op] = OperatorCounts.GetValueOrDefault(op) + 1;
    }

    static ProtoWriter Attribute(OnnxAttribute a)
    {
        // AttributeProto: name 1, f 2, i 3, s 4, floats 7, ints 8, type 20 (FLOAT 1, INT 2, STRING 3, FLOATS 6, INTS 7).
        var w = new ProtoWriter().String(1, a.Name);
        switch (a.Value)
        {
            case long i: w.Int64(3, i).Int64(20, 2); break;
            case int i: w.Int64(3, i).Int64(20, 2); break;
            case float f: w.Float(2, f).Int64(20, 1); break;
            case string s: w.String(4, s).Int64(20, 3); break;
            case long[] ints: w.PackedInt64(8, ints).Int64(20, 7); break;
            case float[] floats: w.PackedFloat(7, floats).Int64(20, 6); break;
            default: throw new ArgumentException($"attribute {a.Name}: unsupported value {a.Value.GetType().Name}");
        }
        return w;
    }

    static int SizeOf(OnnxType type) => type switch
    {
        OnnxType.Float or OnnxType.Int32 => 4,
        OnnxType.Float16 => 2,
        OnnxType.Int64 => 8,
        OnnxType.UInt8 or OnnxType.Int8 or OnnxType.Bool => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    static ProtoWriter ValueInfo(string name, OnnxType type, object[] dims) =>
        // ValueInfoProto { name 1, type 2: TypeProto { tensor_type 1: { elem_type 1, shape 2: { dim 1: { dim_value 1 | dim_param 2 } } } } }
        new ProtoWriter().String(1, name).Message(2, t => t.Message(1, tensor =>
        {
            tensor.Int64(1, (long)type);
            tensor.Message(2, shape =>
            {
                foreach (var d in dims)
                    shape.Message(1, dim => _ = d is string symbol ? dim.String(2, symbol) : dim.Int64(1, Convert.ToInt64(d)));
            });
        }));

    /// <summary>Where ONNX external data puts each initializer's bytes: its offset in the data file, or -1 inside the model.</summary>
    long[] ExternalOffsets(long threshold)
    {
        var offsets = new long[_initializers.Count];
        long end = 0;
        for (int i = 0; i < offsets.Length; i++)
        {
            long length = RawBytes(_initializers[i].Data).Length;
            if (length < threshold) { offsets[i] = -1; continue; }
            offsets[i] = (end + ExternalAlignment - 1) / ExternalAlignment * ExternalAlignment;
            end = offsets[i] + length;
        }
        return offsets;
    }

    /// <summary>Each externally stored tensor starts at a multiple of this (page size, so a reader may map it).</summary>
    const long ExternalAlignment = 4096;

    /// <summary>
    /// Writes the external data file of <see cref="WriteModel"/> with the same <paramref name="threshold"/>: every
    /// initializer of at least that many bytes at its aligned offset, zeros between.
    /// </summary>
    public void WriteExternalData(Stream stream, long threshold)
    {
        var offsets = ExternalOffsets(threshold);
        long position = 0;
        for (int i = 0; i < offsets.Length; i++)
        {
            if (offsets[i] < 0) continue;
            if (offsets[i] > position) stream.Write(new byte[offsets[i] - position]);
            var raw = RawBytes(_initializers[i].Data);
            stream.Write(raw);
            position = offsets[i] + raw.Length;
        }
    }

    /// <summary>
    /// Writes the ModelProto to <paramref name="stream"/>: IR version for the opset, the default-domain opset import,
    /// the graph, and <paramref name="metadata"/> as metadata_props. Initializer data goes straight from the arrays to
    /// the stream (the graph's size is computed first), so writing costs no copy of the weights. With
    /// <paramref name="externalData"/> (a file name beside the model), initializers of at least
    /// <paramref name="threshold"/> bytes are stored there instead (ONNX external data: <c>data_location</c> EXTERNAL and
    /// location / offset / length entries), as <see cref="WriteExternalData"/> writes them.
    /// </summary>
    public void WriteModel(Stream stream, string graphName, string producerVersion, IReadOnlyDictionary<string, string> metadata,
        string? externalData = null, long threshold = 1024)
    {
        var offsets = externalData is null ? null : ExternalOffsets(threshold);
        var head = new ProtoWriter();
        foreach (var node in _nodes) head.Message(1, node);                 // GraphProto.node
        head.String(2, graphName);                                          // GraphProto.name
        var tail = new ProtoWriter();
        foreach (var (name, type, dims) in _inputs) tail.Message(11, ValueInfo(name, type, dims));
        foreach (var (name, type, dims) in _outputs) tail.Message(12, ValueInfo(name, type, dims));
        // GraphProto.initializer 5: TensorProto { dims 1, data_type 2, name 8, raw_data 9 }
        // external: TensorProto.external_data 13 { key 1, value 2 } and data_location 14 = EXTERNAL (1), no raw_data.
        var tensors = _initializers.Select((i, index) =>
        {
            var header = new ProtoWriter().PackedInt64(1, i.Dims).Int64(2, (long)i.Type).String(8, i.Name);
            long rawLength = RawBytes(i.Data).Length;
            if (offsets is not null && offsets[index] >= 0)
            {
                header.Message(13, e => e.String(1, "location").String(2, externalData!))
                    .Message(13, e => e.String(1, "offset").String(2, offsets[index].ToString(System.Globalization.CultureInfo.InvariantCulture)))
                    .Message(13, e => e.String(1, "length").String(2, rawLength.ToString(System.Globalization.CultureInfo.InvariantCulture)))
                    .Int64(14, 1);
                return (Header: header, i.Data, RawLength: -1L, Length: header.Length);
            }
            return (Header: header, i.Data, RawLength: rawLength, Length: header.Length + ProtoWriter.FieldSize(9, rawLength));
        }).ToList();
        long graphLength = head.Length + tensors.Sum(t => ProtoWriter.FieldSize(5, t.Length)) + tail.Length;

        var prefix = new ProtoWriter()
            .Int64(1, IrVersion(Opset))                                     // ir_version
            .String(2, "Microsoft.ML.LoRA")                                 // producer_name
            .String(3, producerVersion)                                     // producer_version
            .Message(8, o => o.String(1, "").Int64(2, Opset));              // opset_import { domain "", version }
        foreach (var (key, value) in metadata)
            prefix.Message(14, e => e.String(1, key).String(2, value));     // metadata_props { key 1, value 2 }
        prefix.WriteTo(stream);
        ProtoWriter.WriteFieldHeader(stream, 7, graphLength);               // graph
        head.WriteTo(stream);
        foreach (var t in tensors)
        {
            ProtoWriter.WriteFieldHeader(stream, 5, t.Length);
            t.Header.WriteTo(stream);
            if (t.RawLength < 0) continue;   // stored in the external data file
            ProtoWriter.WriteFieldHeader(stream, 9, t.RawLength);
            stream.Write(RawBytes(t.Data));
        }
        tail.WriteTo(stream);
    }

    /// <summary>The IR version that introduced <paramref name="opset"/> (ONNX 1.12: opset 17, IR 8; 1.14: 19, IR 9; 1.16: 21, IR 10).</summary>
    public static long IrVersion(int opset) => opset switch
    {
        <= 18 => 8,
        <= 20 => 9,
        _ => 10,
    };
}
