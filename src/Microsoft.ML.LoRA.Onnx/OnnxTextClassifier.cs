using Microsoft.ML.LoRA.Tokenization;
using Microsoft.ML.OnnxRuntime;

namespace Microsoft.ML.LoRA.Onnx;

/// <summary>Options of <see cref="OnnxTextClassifier"/>.</summary>
public sealed record OnnxScoringOptions
{
    /// <summary>Examples per ONNX Runtime call (texts are sorted by length and padded per batch). Default 32.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Threads ONNX Runtime uses inside an operator; 0 (default) lets it choose (one per physical core).</summary>
    public int IntraOpThreads { get; init; }

    /// <summary>
    /// Whether ONNX Runtime's worker threads spin while waiting for work (its default). Spinning wins a little on an
    /// idle machine and loses much when the cores are shared; off by default here, as libtorch's OpenMP threads wait
    /// passively in this library (docs/benchmarks.md).
    /// </summary>
    public bool SpinWait { get; init; }

    /// <summary>Graph optimizations ONNX Runtime applies when it loads the model (default: all).</summary>
    public GraphOptimizationLevel OptimizationLevel { get; init; } = GraphOptimizationLevel.ORT_ENABLE_ALL;

    /// <summary>Most tokens per example; default: the length the model was trained with (lora-onnx.json).</summary>
    public int? MaxSequenceLength { get; init; }

    /// <summary>
    /// Pads every batch to exactly this many tokens (longer texts are cut to it) and tells ONNX Runtime so, fixing the
    /// graph's <c>sequence</c> axis before it optimizes the graph. Its optimizer then fuses each residual Add and
    /// LayerNormalization into one SkipLayerNormalization kernel, a fusion it makes only where the sequence length is
    /// known. Not offered publicly: on the CPUs measured the fused graph scored slower than the dynamic one
    /// (docs/deployment.md); kept for the benchmark and the tests that show it. Null: each batch is padded to its own
    /// longest text, and the graph keeps its dynamic axes.
    /// </summary>
    internal int? FixedSequenceLength { get; init; }
}

/// <summary>
/// Scores an exported model (<c>lora export-onnx</c>) with ONNX Runtime: texts through the same tokenizer training
/// used, in length-sorted, dynamically padded batches; logits and softmax probabilities in the label order of
/// <see cref="Labels"/>. Loads no libtorch. Thread-safe: ONNX Runtime sessions run concurrently.
/// </summary>
public sealed class OnnxTextClassifier : IDisposable
{
    readonly InferenceSession _session;
    readonly ITextEncoder? _encoder;
    readonly int _batchSize;
    readonly int? _fixedLength;

    OnnxTextClassifier(string folder, OnnxModelDescription description, InferenceSession session, ITextEncoder? encoder, int batchSize, int? fixedLength)
    {
        Folder = folder;
        Description = description;
        _session = session;
        _encoder = encoder;
        _batchSize = batchSize;
        _fixedLength = fixedLength;
    }

    /// <summary>The export folder.</summary>
    public string Folder { get; }

    /// <summary>The folder's lora-onnx.json.</summary>
    public OnnxModelDescription Description { get; }

    /// <summary>Label names in logit order.</summary>
    public IReadOnlyList<string> Labels => Description.Labels;

    /// <summary>The tokenizer (null for an export without tokenizer files).</summary>
    public ITextEncoder? Encoder => _encoder;

    /// <summary>Loads the export in <paramref name="folder"/>: lora-onnx.json, model.onnx and the tokenizer files.</summary>
    /// <exception cref="FileNotFoundException">lora-onnx.json or model.onnx is missing.</exception>
    public static OnnxTextClassifier Load(string folder, OnnxScoringOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        options ??= new();
        ArgumentOutOfRangeException.ThrowIfLessThan(options.BatchSize, 1, nameof(options.BatchSize));
        if (options.FixedSequenceLength is int fixedLength) ArgumentOutOfRangeException.ThrowIfLessThan(fixedLength, 1, nameof(options.FixedSequenceLength));
        var description = OnnxModelDescription.Load(folder);
        var modelPath = Path.Combine(folder, OnnxModelDescription.ModelFileName);
        if (!File.Exists(modelPath)) throw new FileNotFoundException($"{modelPath} not found", modelPath);
        var encoder = description.TokenizerConfig is null ? null : description.CreateTextEncoder(folder, options.FixedSequenceLength ?? options.MaxSequenceLength);
        using var sessionOptions = CreateSessionOptions(options);
        var session = new InferenceSession(modelPath, sessionOptions);
        return new OnnxTextClassifier(Path.GetFullPath(folder), description, session, encoder, options.BatchSize, options.FixedSequenceLength);
    }

    /// <summary>The name of the exported graph's sequence axis (its inputs are [batch, sequence]).</summary>
    internal const string SequenceAxis = "sequence";

    internal static SessionOptions CreateSessionOptions(OnnxScoringOptions options)
    {
        var sessionOptions = new SessionOptions { GraphOptimizationLevel = options.OptimizationLevel };
        if (options.IntraOpThreads > 0) sessionOptions.IntraOpNumThreads = options.IntraOpThreads;
        sessionOptions.AddSessionConfigEntry("session.intra_op.allow_spinning", options.SpinWait ? "1" : "0");
        if (options.FixedSequenceLength is int length) sessionOptions.AddFreeDimensionOverrideByName(SequenceAxis, length);
        return sessionOptions;
    }

    /// <summary>The sequence length this scorer runs at, if fixed (<see cref="OnnxScoringOptions.FixedSequenceLength"/>).</summary>
    internal int? FixedSequenceLength => _fixedLength;

    /// <summary>Softmax probabilities of one text (or text pair), in <see cref="Labels"/> order.</summary>
    public float[] PredictProbabilities(string? text, string? pair = null) => Softmax(Logits(new[] { text }, pair is null ? null : new[] { pair })[0]);

    /// <summary>The most probable label of one text (or text pair).</summary>
    public string PredictLabel(string? text, string? pair = null)
    {
        var p = PredictProbabilities(text, pair);
        return Labels[Array.IndexOf(p, p.Max())];
    }

    /// <summary>Logits of each text (with its pair, when <paramref name="pairs"/> is given), in input order.</summary>
    public float[][] Logits(IReadOnlyList<string?> texts, IReadOnlyList<string?>? pairs = null)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (pairs is not null && pairs.Count != texts.Count) throw new ArgumentException($"{pairs.Count} pairs for {texts.Count} texts", nameof(pairs));
        var encoder = _encoder ?? throw new InvalidOperationException($"the export in {Folder} has no tokenizer; score token ids with Logits(ids, mask)");
        var encoded = texts.Select((t, i) => encoder.Encode(t, pairs?[i])).ToArray();
        var result = new float[encoded.Length][];
        var order = Enumerable.Range(0, encoded.Length).OrderBy(i => encoded[i].Length).ToArray();
        for (int start = 0; start < order.Length; start += _batchSize)
        {
            var batch = order.Skip(start).Take(_batchSize).ToArray();
            var logits = Run(batch.Select(i => encoded[i]).ToArray(), encoder.PadTokenId);
            for (int j = 0; j < batch.Length; j++) result[batch[j]] = logits[j];
        }
        return result;
    }

    /// <summary>Logits of already tokenized, equally long rows (padding marked 0 in <paramref name="attentionMask"/>).</summary>
    public float[][] Logits(long[][] inputIds, long[][] attentionMask, long[][]? tokenTypeIds = null)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        ArgumentNullException.ThrowIfNull(attentionMask);
        if (inputIds.Length == 0) return Array.Empty<float[]>();
        int seq = inputIds[0].Length;
        if (inputIds.Any(r => r.Length != seq) || attentionMask.Length != inputIds.Length || attentionMask.Any(r => r.Length != seq)
            || (tokenTypeIds is not null && (tokenTypeIds.Length != inputIds.Length || tokenTypeIds.Any(r => r.Length != seq))))
            throw new ArgumentException("input ids, attention mask and token type ids must be rows of one length");
        if (_fixedLength is int fixedLength && seq != fixedLength)
            throw new ArgumentException($"this scorer runs at a fixed sequence length of {fixedLength} tokens (OnnxScoringOptions.FixedSequenceLength); the rows have {seq}");
        return Run(inputIds.Length, seq, inputIds.SelectMany(r => r).ToArray(), attentionMask.SelectMany(r => r).ToArray(),
            tokenTypeIds?.SelectMany(r => r).ToArray());
    }

    float[][] Run(EncodedText[] rows, int padId)
    {
        int seq = _fixedLength ?? rows.Max(r => r.Length);
        var ids = new long[rows.Length * seq];
        var mask = new long[rows.Length * seq];
        var types = new long[rows.Length * seq];
        for (int i = 0; i < rows.Length; i++)
        {
            var r = rows[i];
            for (int j = 0; j < seq; j++)
            {
                bool real = j < r.Length;
                ids[i * seq + j] = real ? r.InputIds[j] : padId;
                mask[i * seq + j] = real ? 1 : 0;
                types[i * seq + j] = real ? r.TokenTypeIds[j] : 0;
            }
        }
        return Run(rows.Length, seq, ids, mask, types);
    }

    /// <summary>Logits of <paramref name="batch"/> rows of <paramref name="seq"/> tokens given as flat row-major arrays.</summary>
    internal float[][] Run(int batch, int seq, long[] ids, long[] mask, long[]? types)
    {
        var shape = new long[] { batch, seq };
        var inputs = new Dictionary<string, OrtValue>(StringComparer.Ordinal);
        try
        {
            inputs["input_ids"] = OrtValue.CreateTensorValueFromMemory(ids, shape);
            inputs["attention_mask"] = OrtValue.CreateTensorValueFromMemory(mask, shape);
            if (Description.TakesTokenTypes) inputs["token_type_ids"] = OrtValue.CreateTensorValueFromMemory(types ?? new long[ids.Length], shape);
            using var runOptions = new RunOptions();
            using var outputs = _session.Run(runOptions, inputs, new[] { Description.Output });
            var flat = outputs[0].GetTensorDataAsSpan<float>();
            int width = flat.Length / batch;
            var result = new float[batch][];
            for (int i = 0; i < batch; i++) result[i] = flat.Slice(i * width, width).ToArray();
            return result;
        }
        finally
        {
            foreach (var v in inputs.Values) v.Dispose();
        }
    }

    /// <summary>Softmax of one row of logits.</summary>
    public static float[] Softmax(float[] logits)
    {
        float max = logits.Max();
        var e = logits.Select(l => MathF.Exp(l - max)).ToArray();
        float sum = e.Sum();
        return e.Select(v => v / sum).ToArray();
    }

    public void Dispose() => _session.Dispose();
}
