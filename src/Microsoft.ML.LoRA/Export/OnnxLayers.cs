namespace Microsoft.ML.LoRA.Export;

/// <summary>A weight as the exporter reads it: row-major float data and its shape (Hugging Face layout).</summary>
internal sealed record WeightArray(float[] Data, long[] Shape)
{
    public long Rows => Shape[0];
    public long Columns => Shape.Length > 1 ? Shape[1] : 1;
}

/// <summary>
/// The building blocks the family graphs share, written in standard ONNX operators over a model's merged weights
/// (Hugging Face names): linear layers (MatMul + Add, or with int8 weights DynamicQuantizeLinear + MatMulInteger),
/// LayerNormalization, the activations, multi-head attention with an additive score bias. Every weight read is
/// recorded, so the exporter can refuse a model whose weights its graph left out.
/// </summary>
internal sealed class OnnxLayers
{
    readonly IReadOnlyDictionary<string, WeightArray> _weights;
    readonly HashSet<string> _used = new(StringComparer.Ordinal);
    readonly Dictionary<string, (string Quantized, string Scale, string ZeroPoint)> _quantizedInputs = new(StringComparer.Ordinal);
    readonly Dictionary<string, string> _initializers = new(StringComparer.Ordinal);   // a weight read twice is stored once
    readonly bool _int8, _float16;

    /// <param name="graph">The graph to write into.</param>
    /// <param name="weights">The model's merged weights under Hugging Face names.</param>
    /// <param name="int8">Linear layers' weights as int8 (dynamic quantization).</param>
    /// <param name="float16">Float weights stored as float16, each widened by a Cast (which ONNX Runtime folds when it loads the model).</param>
    public OnnxLayers(OnnxGraph graph, IReadOnlyDictionary<string, WeightArray> weights, bool int8, bool float16 = false)
    {
        Graph = graph;
        _weights = weights;
        _int8 = int8;
        _float16 = float16;
    }

    /// <summary>A float weight initializer: fp32, or fp16 widened back to fp32 by a Cast.</summary>
    public string Weight(string hint, float[] data, params long[] dims)
    {
        if (!_float16) return Graph.Weight(hint, data, dims);
        var half = new Half[data.Length];
        for (long i = 0; i < data.Length; i++) half[i] = (Half)data[i];
        return Graph.Node("Cast", new[] { Graph.Weight(hint + "_fp16", half, dims) }, OnnxAttribute.Int("to", (long)OnnxType.Float));
    }

    public OnnxGraph Graph { get; }

    /// <summary>The weights no node has read.</summary>
    public IEnumerable<string> Unused => _weights.Keys.Where(k => !_used.Contains(k)).Order(StringComparer.Ordinal);

    public bool Has(string name) => _weights.ContainsKey(name);

    public WeightArray Read(string name)
    {
        if (!_weights.TryGetValue(name, out var w)) throw new InvalidOperationException($"the model has no weight {name}");
        _used.Add(name);
        return w;
    }

    /// <summary>A weight as an initializer of its own shape.</summary>
    public string Tensor(string name) => Once(name, () => Weight(name, Read(name).Data, Read(name).Shape));

    string Once(string key, Func<string> add)
    {
        if (!_initializers.TryGetValue(key, out var name)) _initializers[key] = name = add();
        return name;
    }

    /// <summary>Rows of an embedding table looked up by <paramref name="ids"/> (int64).</summary>
    public string Embed(string table, string ids) => Graph.Node("Gather", new[] { Tensor(table), ids });

    /// <summary>
    /// <c>x W^T + b</c> for the linear layer <paramref name="prefix"/> (<c>.weight</c> [out, in], or [in, out] when
    /// <paramref name="fanInFanOut"/>, as GPT-2's Conv1D stores it; <c>.bias</c> when present).
    /// </summary>
    public string Linear(string x, string prefix, bool fanInFanOut = false)
    {
        var w = Read(prefix + ".weight");
        long inFeatures = fanInFanOut ? w.Rows : w.Columns, outFeatures = fanInFanOut ? w.Columns : w.Rows;
        float[] Transposed() => fanInFanOut ? w.Data : Transpose(w.Data, (int)w.Rows, (int)w.Columns);   // [in, out]
        string y = _int8
            ? QuantizedProduct(x, prefix, Transposed, inFeatures, outFeatures)
            : Graph.Node("MatMul", new[] { x, Once(prefix + ".weight", () => Weight(prefix + ".weight", Transposed(), inFeatures, outFeatures)) });
        return Has(prefix + ".bias") ? Graph.Node("Add", new[] { y, Tensor(prefix + ".bias") }) : y;
    }

    /// <summary>
    /// Dynamic quantization, as ONNX Runtime's quantize_dynamic writes it: the activations to uint8 per call
    /// (DynamicQuantizeLinear), the weight to int8 once, symmetric per output column; the int32 product back to float
    /// times both scales. ONNX Runtime fuses the pattern into its DynamicQuantizeMatMul kernel.
    /// </summary>
    string QuantizedProduct(string x, string prefix, Func<float[]> weight, long inFeatures, long outFeatures)
    {
        var w = Once(prefix + ".weight_quantized", () =>
        {
            var (quantized, scales) = QuantizeColumns(weight(), (int)inFeatures, (int)outFeatures);
            _initializers[prefix + ".weight_scale"] = Graph.Weight(prefix + ".weight_scale", scales, outFeatures);
            return Graph.Initializer(prefix + ".weight_quantized", OnnxType.Int8, quantized, inFeatures, outFeatures);
        });
        var zero = Once("int8_zero_point", () => Graph.Initializer("int8_zero_point", OnnxType.Int8, new byte[1]));
        if (!_quantizedInputs.TryGetValue(x, out var q))
        {
            var outputs = Graph.Nodes("DynamicQuantizeLinear", new[] { x }, 3);
            q = _quantizedInputs[x] = (outputs[0], outputs[1], outputs[2]);
        }
        var product = Graph.Node("MatMulInteger", new[] { q.Quantized, w, q.ZeroPoint, zero });
        var asFloat = Graph.Node("Cast", new[] { product }, OnnxAttribute.Int("to", (long)OnnxType.Float));
        var scale = Graph.Node("Mul", new[] { q.Scale, _initializers[prefix + ".weight_scale"] });
        return Graph.Node("Mul", new[] { asFloat, scale });
    }

    /// <summary>int8 columns of an [in, out] matrix (two's complement bytes), each scaled by its largest magnitude / 127 (zero point 0).</summary>
    internal static (byte[] Quantized, float[] Scales) QuantizeColumns(float[] weight, int rows, int columns)
    {
        var scales = new float[columns];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < columns; j++)
                scales[j] = Math.Max(scales[j], Math.Abs(weight[(long)i * columns + j]));
        for (int j = 0; j < columns; j++) scales[j] = scales[j] > 0 ? scales[j] / 127f : 1f;
        var quantized = new byte[weight.Length];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < columns; j++)
                quantized[(long)i * columns + j] = unchecked((byte)(sbyte)Math.Clamp(MathF.Round(weight[(long)i * columns + j] / scales[j], MidpointRounding.ToEven), -127, 127));
        return (quantized, scales);
    }

    static float[] Transpose(float[] data, int rows, int columns)
    {
        var t = new float[data.Length];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < columns; j++)
                t[(long)j * rows + i] = data[(long)i * columns + j];
        return t;
    }

    /// <summary>LayerNormalization over the last axis with <paramref name="prefix"/>.weight and .bias.</summary>
    public string LayerNorm(string x, string prefix, double epsilon) =>
        Graph.Node("LayerNormalization", new[] { x, Tensor(prefix + ".weight"), Tensor(prefix + ".bias") },
            OnnxAttribute.Int("axis", -1), OnnxAttribute.Float("epsilon", (float)epsilon));

    /// <summary>
    /// A Hugging Face activation: "gelu" (erf form; the Gelu operator from opset 20), the tanh approximations
    /// ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"), "relu", "silu".
    /// </summary>
    public string Activation(string x, string name)
    {
        var g = Graph;
        switch (name)
        {
            case "gelu" when g.Opset >= 20:
                return g.Node("Gelu", new[] { x });
            case "gelu":
            {
                // 0.5 x (1 + erf(x / sqrt 2))
                var scaled = g.Node("Div", new[] { x, g.FloatScalar(MathF.Sqrt(2f)) });
                var erf = g.Node("Erf", new[] { scaled });
                var onePlus = g.Node("Add", new[] { erf, g.FloatScalar(1f) });
                var times = g.Node("Mul", new[] { x, onePlus });
                return g.Node("Mul", new[] { times, g.FloatScalar(0.5f) });
            }
            case "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" when g.Opset >= 20:
                return g.Node("Gelu", new[] { x }, OnnxAttribute.String("approximate", "tanh"));
            case "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast":
            {
                // 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
                var cube = g.Node("Mul", new[] { g.Node("Mul", new[] { x, x }), x });
                var inner = g.Node("Add", new[] { x, g.Node("Mul", new[] { cube, g.FloatScalar(0.044715f) }) });
                var tanh = g.Node("Tanh", new[] { g.Node("Mul", new[] { inner, g.FloatScalar(MathF.Sqrt(2f / MathF.PI)) }) });
                var times = g.Node("Mul", new[] { x, g.Node("Add", new[] { tanh, g.FloatScalar(1f) }) });
                return g.Node("Mul", new[] { times, g.FloatScalar(0.5f) });
            }
            case "relu":
                return g.Node("Relu", new[] { x });
            case "silu":
                return g.Node("Mul", new[] { x, g.Node("Sigmoid", new[] { x }) });
            default:
                throw new NotSupportedException($"activation '{name}' has no ONNX export");
        }
    }

    /// <summary>
    /// Multi-head attention over projected queries, keys and values [batch, seq, heads·dim]: softmax(q k^T / sqrt(dim)
    /// + <paramref name="scoreBias"/>) v, back to [batch, seq, heads·dim]. The bias broadcasts to [batch, heads, seq, seq].
    /// </summary>
    public string Attention(string q, string k, string v, int heads, int headDim, string scoreBias)
    {
        var g = Graph;
        var split = g.Int64s(0, 0, heads, headDim);
        string Heads(string x, params long[] perm) => g.Node("Transpose", new[] { g.Node("Reshape", new[] { x, split }) }, OnnxAttribute.Ints("perm", perm));
        var queries = Heads(q, 0, 2, 1, 3);                 // [b, h, s, d]
        var keys = Heads(k, 0, 2, 3, 1);                    // [b, h, d, s]
        var values = Heads(v, 0, 2, 1, 3);                  // [b, h, s, d]
        var scores = g.Node("MatMul", new[] { queries, keys });
        var scaled = g.Node("Div", new[] { scores, g.FloatScalar(MathF.Sqrt(headDim)) });
        var biased = g.Node("Add", new[] { scaled, scoreBias });
        var probabilities = g.Node("Softmax", new[] { biased }, OnnxAttribute.Int("axis", -1));
        var context = g.Node("MatMul", new[] { probabilities, values });
        var rows = g.Node("Transpose", new[] { context }, OnnxAttribute.Ints("perm", 0, 2, 1, 3));
        return g.Node("Reshape", new[] { rows, g.Int64s(0, 0, (long)heads * headDim) });
    }

    /// <summary>The sequence length of [batch, seq] <paramref name="ids"/> as an int64 scalar.</summary>
    public string SequenceLength(string ids) =>
        Graph.Node("Gather", new[] { Graph.Node("Shape", new[] { ids }), Graph.Int64Scalar(1) }, OnnxAttribute.Int("axis", 0));

    /// <summary>0, 1, ..., seq - 1 (int64 [seq]).</summary>
    public string Positions(string ids) =>
        Graph.Node("Range", new[] { Graph.Int64Scalar(0), SequenceLength(ids), Graph.Int64Scalar(1) });

    /// <summary>The additive key mask [batch, 1, 1, seq]: 0 where <paramref name="attentionMask"/> is set, float.MinValue where not.</summary>
    public string KeyMaskBias(string attentionMask)
    {
        var g = Graph;
        var real = g.Node("Cast", new[] { attentionMask }, OnnxAttribute.Int("to", (long)OnnxType.Bool));
        var bias = g.Node("Where", new[] { real, g.FloatScalar(0f), g.FloatScalar(float.MinValue) });
        return g.Node("Unsqueeze", new[] { bias, g.Int64s(1, 2) });
    }

    /// <summary>
    /// The causal additive mask [batch, 1, seq, seq]: a query sees keys at or before it that are real tokens, and
    /// always itself (so a padding row has something to attend to), as the library's decoders do.
    /// </summary>
    public string CausalMaskBias(string attentionMask, string positions)
    {
        var g = Graph;
        var queryPositions = g.Node("Unsqueeze", new[] { positions, g.Int64s(1) });   // [s, 1]
        var keyPositions = g.Node("Unsqueeze", new[] { positions, g.Int64s(0) });     // [1, s]
        var causal = g.Node("LessOrEqual", new[] { keyPositions, queryPositions });
        var self = g.Node("Equal", new[] { keyPositions, queryPositions });
        var real = g.Node("Cast", new[] { attentionMask }, OnnxAttribute.Int("to", (long)OnnxType.Bool));
        var realKeys = g.Node("Unsqueeze", new[] { real, g.Int64s(1, 2) });              // [b, 1, 1, s]
        var visible = g.Node("And", new[] { causal, g.Node("Or", new[] { realKeys, self }) });
        return g.Node("Where", new[] { visible, g.FloatScalar(0f), g.FloatScalar(float.MinValue) });
    }

    /// <summary>The first token's rows: [batch, 1, hidden] from [batch, seq, hidden].</summary>
    public string FirstRow(string hidden) =>
        Graph.Node("Slice", new[] { hidden, Graph.Int64s(0), Graph.Int64s(1), Graph.Int64s(1) });

    /// <summary>The last position whose mask is set, per row (position 0 for a row with none): int64 [batch, 1].</summary>
    public string LastRealIndex(string attentionMask, string positions)
    {
        var g = Graph;
        var real = g.Node("Cast", new[] { g.Node("Cast", new[] { attentionMask }, OnnxAttribute.Int("to", (long)OnnxType.Bool)) },
            OnnxAttribute.Int("to", (long)OnnxType.Int64));
        var weighted = g.Node("Mul", new[] { real, positions });
        return g.Node("ArgMax", new[] { weighted }, OnnxAttribute.Int("axis", 1), OnnxAttribute.Int("keepdims", 1));
    }

    /// <summary>The rows of [batch, seq, hidden] at <paramref name="index"/> [batch, 1]: [batch, 1, hidden].</summary>
    public string RowsAt(string hidden, string index, long hiddenSize)
    {
        var g = Graph;
        var expanded = g.Node("Expand", new[] { g.Node("Unsqueeze", new[] { index, g.Int64s(2) }), g.Int64s(1, 1, hiddenSize) });
        return g.Node("GatherElements", new[] { hidden, expanded }, OnnxAttribute.Int("axis", 1));
    }

    /// <summary>
    /// The additive mask [batch, 1, 1, seq] of one query row per example at <paramref name="index"/> [batch, 1]: keys
    /// at or before it that are real tokens, and itself (<see cref="CausalMaskBias"/> for that row).
    /// </summary>
    public string CausalRowMaskBias(string attentionMask, string positions, string index)
    {
        var g = Graph;
        var keyPositions = g.Node("Unsqueeze", new[] { positions, g.Int64s(0) });   // [1, s]
        var notAhead = g.Node("LessOrEqual", new[] { keyPositions, index });        // [b, s]
        var self = g.Node("Equal", new[] { keyPositions, index });
        var real = g.Node("Cast", new[] { attentionMask }, OnnxAttribute.Int("to", (long)OnnxType.Bool));
        var visible = g.Node("And", new[] { notAhead, g.Node("Or", new[] { real, self }) });
        var bias = g.Node("Where", new[] { visible, g.FloatScalar(0f), g.FloatScalar(float.MinValue) });
        return g.Node("Unsqueeze", new[] { bias, g.Int64s(1, 2) });
    }

    /// <summary>[batch, 1, hidden] to [batch, hidden].</summary>
    public string SingleRow(string rows) => Graph.Node("Squeeze", new[] { rows, Graph.Int64s(1) });

    /// <summary>RMSNorm (LLaMA): x / sqrt(mean(x²) + eps) · <paramref name="prefix"/>.weight, over the last axis.</summary>
    public string RmsNorm(string x, string prefix, double epsilon)
    {
        var g = Graph;
        var squares = g.Node("Mul", new[] { x, x });
        // ReduceMean takes its axes as an attribute up to opset 17 and as an input from 18.
        var mean = g.Opset >= 18
            ? g.Node("ReduceMean", new[] { squares, g.Int64s(-1) }, OnnxAttribute.Int("keepdims", 1))
            : g.Node("ReduceMean", new[] { squares }, OnnxAttribute.Ints("axes", -1), OnnxAttribute.Int("keepdims", 1));
        var root = g.Node("Sqrt", new[] { g.Node("Add", new[] { mean, g.FloatScalar((float)epsilon) }) });
        var normed = g.Node("Mul", new[] { x, g.Node("Reciprocal", new[] { root }) });
        return g.Node("Mul", new[] { Tensor(prefix + ".weight"), normed });
    }

    /// <summary>
    /// The rotary tables for positions [seq]: cos and sin of position · inverse frequency, each half repeated, shaped
    /// [1, seq, 1, headDim] to broadcast over [batch, seq, heads, headDim].
    /// </summary>
    public (string Cos, string Sin) RotaryTables(string positions, float[] inverseFrequencies) =>
        Rotary(positions, inverseFrequencies, positionAxes: 1, tableAxes: new long[] { 0, 2 });

    /// <summary>The rotary tables of one row per example at <paramref name="rowPositions"/> (int64 [batch, 1]): [batch, 1, 1, headDim].</summary>
    public (string Cos, string Sin) RowRotaryTables(string rowPositions, float[] inverseFrequencies) =>
        Rotary(rowPositions, inverseFrequencies, positionAxes: 2, tableAxes: new long[] { 2 });

    (string Cos, string Sin) Rotary(string positions, float[] inverseFrequencies, long positionAxes, long[] tableAxes)
    {
        var g = Graph;
        var inverse = Once("rotary.inverse_frequencies", () => g.Weight("rotary.inverse_frequencies", inverseFrequencies, inverseFrequencies.Length));
        var at = g.Node("Unsqueeze", new[] { g.Node("Cast", new[] { positions }, OnnxAttribute.Int("to", (long)OnnxType.Float)), g.Int64s(positionAxes) });
        var freqs = g.Node("Mul", new[] { at, inverse });                                  // [..., d/2]
        var emb = g.Node("Concat", new[] { freqs, freqs }, OnnxAttribute.Int("axis", -1));  // [..., d]
        string Table(string op) => g.Node("Unsqueeze", new[] { g.Node(op, new[] { emb }), g.Int64s(tableAxes) });
        return (Table("Cos"), Table("Sin"));
    }

    /// <summary>Rotary position embedding of [batch, seq, heads·headDim]: x·cos + rotate_half(x)·sin, per head.</summary>
    public string Rotate(string x, int heads, int headDim, (string Cos, string Sin) tables)
    {
        var g = Graph;
        long half = headDim / 2;
        var split = g.Node("Reshape", new[] { x, g.Int64s(0, 0, heads, headDim) });
        var first = g.Node("Slice", new[] { split, g.Int64s(0), g.Int64s(half), g.Int64s(-1) });
        var second = g.Node("Slice", new[] { split, g.Int64s(half), g.Int64s(headDim), g.Int64s(-1) });
        var rotated = g.Node("Concat", new[] { g.Node("Neg", new[] { second }), first }, OnnxAttribute.Int("axis", -1));
        var sum = g.Node("Add", new[] { g.Node("Mul", new[] { split, tables.Cos }), g.Node("Mul", new[] { rotated, tables.Sin }) });
        return g.Node("Reshape", new[] { sum, g.Int64s(0, 0, (long)heads * headDim) });
    }

    /// <summary>Grouped key/value heads repeated for the query heads: [batch, seq, kvHeads·headDim] to [batch, seq, kvHeads·repeat·headDim].</summary>
    public string RepeatHeads(string x, int keyValueHeads, int repeat, int headDim)
    {
        if (repeat == 1) return x;
        var g = Graph;
        var grouped = g.Node("Reshape", new[] { x, g.Int64s(0, 0, keyValueHeads, 1, headDim) });
        var expanded = g.Node("Expand", new[] { grouped, g.Int64s(1, 1, keyValueHeads, repeat, headDim) });
        return g.Node("Reshape", new[] { expanded, g.Int64s(0, 0, (long)keyValueHeads * repeat * headDim) });
    }

    /// <summary>The row mask of <see cref="CausalRowMaskBias"/> [batch, 1, 1, seq] with Mistral's sliding window: keys <paramref name="window"/> or more positions before the row masked too.</summary>
    public string WindowedRowBias(string bias, string positions, string rowPositions, int window)
    {
        var g = Graph;
        var distance = g.Node("Sub", new[] { rowPositions, g.Node("Unsqueeze", new[] { positions, g.Int64s(0) }) });   // [b, s]
        var near = g.Node("Unsqueeze", new[] { g.Node("Less", new[] { distance, g.Int64Scalar(window) }), g.Int64s(1, 2) });   // [b, 1, 1, s]
        return g.Node("Where", new[] { near, bias, g.FloatScalar(float.MinValue) });
    }

    /// <summary>
    /// <paramref name="bias"/> [batch, 1, seq, seq] with keys <paramref name="window"/> or more positions before the
    /// query masked too (Mistral's sliding window).
    /// </summary>
    public string WindowedBias(string bias, string positions, int window)
    {
        var g = Graph;
        var distance = g.Node("Sub", new[] { g.Node("Unsqueeze", new[] { positions, g.Int64s(1) }), g.Node("Unsqueeze", new[] { positions, g.Int64s(0) }) });
        var near = g.Node("Less", new[] { distance, g.Int64Scalar(window) });                                  // [s, s]
        return g.Node("Where", new[] { near, bias, g.FloatScalar(float.MinValue) });
    }
}
