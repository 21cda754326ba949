using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models.Quantization;

/// <summary>
/// A 2-D weight [rows, columns] kept quantized as bitsandbytes keeps a QLoRA base: NF4 or FP4 codes two to a byte
/// with one scale a block of 64 weights (the scales double-quantized on request), or int8 codes with one scale a row;
/// or in a 16-bit floating type (bf16, fp16) without scales, as a half-precision checkpoint stores it.
/// <see cref="Dequantize()"/> gives the fp32 weight back; it runs for every product with a frozen base, so it fills the
/// new tensor's memory directly with vector loops (one 512-bit permutation a 16 weights on AVX-512) split between
/// torch's intra-op thread count of .NET threads.
/// </summary>
/// <remarks>
/// The codes and scales live in CPU tensors this object owns: <see cref="Dispose"/> frees them at once. A weight that
/// is on another device is quantized from a CPU copy, and dequantizes on the CPU.
/// </remarks>
internal sealed unsafe class QuantizedWeight : IDisposable
{
    /// <summary>Elements per thread below which dequantizing or quantizing stays on fewer threads.</summary>
    const long ElementsPerPart = 1 << 18;

    readonly Tensor _codes;                 // uint8 [(n + 1) / 2] for 4 bits, int8 [n] for Int8, bf16/fp16 [rows, columns]
    readonly Tensor? _scales;               // fp32 [blocks] or [rows]; uint8 [blocks] when double-quantized; none for 16 bits
    readonly Tensor? _secondAbsmax;         // fp32 [blocks / 256, rounded up] when double-quantized
    readonly float _offset;                 // the mean subtracted from the block maxima when double-quantized
    readonly byte* _codeData, _scaleData;
    readonly float* _secondData;
    bool _disposed;

    QuantizedWeight(BaseQuantization kind, long rows, long columns, bool doubleQuantization, int blockSize,
        Tensor codes, Tensor? scales, Tensor? secondAbsmax, float offset)
    {
        (Kind, Rows, Columns, DoubleQuantization, BlockSize) = (kind, rows, columns, doubleQuantization, blockSize);
        (_codes, _scales, _secondAbsmax, _offset) = (codes, scales, secondAbsmax, offset);
        _codeData = TensorMemory.Address(codes);
        _scaleData = scales is null ? null : TensorMemory.Address(scales);
        _secondData = secondAbsmax is null ? null : (float*)TensorMemory.Address(secondAbsmax);
    }

    /// <summary>The format.</summary>
    public BaseQuantization Kind { get; }

    /// <summary>The weight's first dimension (a linear layer's outputs).</summary>
    public long Rows { get; }

    /// <summary>The weight's second dimension (a linear layer's inputs).</summary>
    public long Columns { get; }

    /// <summary>Whether the 4-bit block maxima are themselves quantized to 8 bits (QLoRA's double quantization).</summary>
    public bool DoubleQuantization { get; }

    /// <summary>Weights per scale: the 4-bit block size (64 by default), or for <see cref="BaseQuantization.Int8"/> and the 16-bit types the row length.</summary>
    public int BlockSize { get; }

    /// <summary>The number of 4-bit blocks (scales), or of rows for <see cref="BaseQuantization.Int8"/>.</summary>
    long ScaleCount => Kind switch
    {
        BaseQuantization.Int8 => Rows,
        BaseQuantization.Nf4 or BaseQuantization.Fp4 => (Rows * Columns + BlockSize - 1) / BlockSize,
        _ => 0,
    };

    /// <summary>The floating type a 16-bit format keeps its weights in, or null for the quantized formats.</summary>
    internal static ScalarType? SixteenBitType(BaseQuantization kind) => kind switch
    {
        BaseQuantization.BFloat16 => ScalarType.BFloat16,
        BaseQuantization.Float16 => ScalarType.Float16,
        _ => null,
    };

    /// <summary>
    /// The bytes the weight occupies: codes, scales, and with double quantization the second-level maxima and the
    /// mean (4 bytes). NF4 with blocks of 64: 4.5 bits a weight, 4.127 double-quantized; Int8: 8 + 32/columns; 16 for bf16 and fp16.
    /// </summary>
    public long StorageBytes =>
        _codes.numel() * _codes.ElementSize + (_scales is null ? 0 : _scales.numel() * _scales.ElementSize)
        + (_secondAbsmax is null ? 0 : _secondAbsmax.numel() * _secondAbsmax.ElementSize + sizeof(float));

    /// <summary><see cref="StorageBytes"/> in bits per weight.</summary>
    public double BitsPerWeight => StorageBytes * 8.0 / (Rows * Columns);

    /// <summary>
    /// Quantizes <paramref name="weight"/> [rows, columns] (any floating type, converted to fp32 first; no gradient is
    /// recorded) as <paramref name="kind"/>. For NF4 and FP4 the weight, flattened row-major, is cut into blocks of
    /// <paramref name="blockSize"/> (a multiple of 16; bitsandbytes uses 64), each block's absolute maximum is its
    /// scale and each value goes to the code of the level nearest value/absmax; <paramref name="doubleQuantization"/>
    /// then stores the scales in 8 bits (<see cref="Quantization.DoubleQuantization"/>). For Int8 each row's absolute
    /// maximum is its scale; BFloat16 and Float16 round each value to that type (a weight already in it is kept as it
    /// is). The block size applies to the 4-bit formats only.
    /// </summary>
    /// <exception cref="ArgumentException">
    /// The weight is not 2-D, is empty or not floating point; <paramref name="kind"/> is None; double quantization was
    /// asked for another format than NF4 or FP4; or the block size is not a positive multiple of 16.
    /// </exception>
    public static QuantizedWeight Quantize(Tensor weight, BaseQuantization kind, bool doubleQuantization = false, int blockSize = 64) =>
        Quantize(weight, kind, doubleQuantization, blockSize, QuantizationKernels.Best);

    /// <summary><see cref="Quantize(Tensor, BaseQuantization, bool, int)"/> with a chosen kernel (every kernel gives the same result).</summary>
    internal static QuantizedWeight Quantize(Tensor weight, BaseQuantization kind, bool doubleQuantization, int blockSize, QuantizationKernel kernel)
    {
        if (weight.dim() != 2) throw new ArgumentException($"a quantized weight is 2-D [rows, columns]; this one has shape [{string.Join(", ", weight.shape)}]", nameof(weight));
        if (weight.numel() == 0) throw new ArgumentException("the weight is empty", nameof(weight));
        if (!weight.is_floating_point()) throw new ArgumentException($"the weight is {weight.dtype}, not a floating type", nameof(weight));
        if (kind == BaseQuantization.None) throw new ArgumentException("BaseQuantization.None keeps the weight dense: there is nothing to quantize", nameof(kind));
        bool fourBit = kind is BaseQuantization.Nf4 or BaseQuantization.Fp4;
        if (!fourBit && doubleQuantization)
            throw new ArgumentException($"double quantization applies to the block maxima of NF4 and FP4; {kind} has no block maxima", nameof(doubleQuantization));
        if (fourBit && (blockSize <= 0 || blockSize % 16 != 0))
            throw new ArgumentException($"the block size must be a positive multiple of 16 (bitsandbytes uses 64), not {blockSize}", nameof(blockSize));
        if (!Enum.IsDefined(kind)) throw new ArgumentOutOfRangeException(nameof(kind), kind, "not a quantization format");
        QuantizationKernels.Require(kernel);

        long rows = weight.shape[0], columns = weight.shape[1], n = rows * columns;
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        if (SixteenBitType(kind) is ScalarType half)
        {
            // Converted straight into memory of its own (a weight in the type already is copied, not shared), with no
            // temporary beside it: a model's weights pass through here one after another while it loads.
            var kept = torch.empty(new[] { rows, columns }, half);
            kept.copy_(weight);
            var sixteen = new QuantizedWeight(kind, rows, columns, false, checked((int)columns), kept, null, null, 0f);
            scope.Detach(kept);
            return sixteen;
        }
        var w = weight.detach().to(DeviceType.CPU).to_type(ScalarType.Float32).contiguous();
        var x = (float*)TensorMemory.Address(w);
        if (kind == BaseQuantization.Int8)
        {
            var codes = torch.empty(n, ScalarType.Int8);
            var absmax = torch.empty(rows, ScalarType.Float32);
            var q = (sbyte*)TensorMemory.Address(codes);
            var a = (float*)TensorMemory.Address(absmax);
            ForParts(rows, Parts(n), (first, end) => RowwiseInt8.Quantize(x, columns, q, a, first, end));
            var int8 = new QuantizedWeight(kind, rows, columns, false, checked((int)columns), codes, absmax, null, 0f);
            scope.Detach(codes, absmax);
            return int8;
        }

        long blocks = (n + blockSize - 1) / blockSize;
        var packed = torch.zeros((n + 1) / 2, ScalarType.Byte);
        var blockAbsmax = torch.empty(blocks, ScalarType.Float32);
        {
            var c = (byte*)TensorMemory.Address(packed);
            var a = (float*)TensorMemory.Address(blockAbsmax);
            var rounding = FourBitRounding.For(kind);
            ForParts(blocks, Parts(n), (first, end) => FourBitBlocks.Quantize(x, n, blockSize, rounding, c, a, first, end, kernel));
        }
        QuantizedWeight result;
        if (!doubleQuantization)
        {
            result = new QuantizedWeight(kind, rows, columns, false, blockSize, packed, blockAbsmax, null, 0f);
            scope.Detach(packed, blockAbsmax);
            return result;
        }
        float offset = blockAbsmax.mean().item<float>();
        var scaleCodes = torch.empty(blocks, ScalarType.Byte);
        var secondAbsmax = torch.empty(Quantization.DoubleQuantization.SecondLevelBlocks(blocks), ScalarType.Float32);
        Quantization.DoubleQuantization.Quantize((float*)TensorMemory.Address(blockAbsmax), blocks, offset,
            TensorMemory.Address(scaleCodes), (float*)TensorMemory.Address(secondAbsmax));
        result = new QuantizedWeight(kind, rows, columns, true, blockSize, packed, scaleCodes, secondAbsmax, offset);
        scope.Detach(packed, scaleCodes, secondAbsmax);
        return result;
    }

    /// <summary>
    /// The weight as a new fp32 tensor [<see cref="Rows"/>, <see cref="Columns"/>] on the CPU, without gradient: each
    /// value its code's level times its block's (or row's) scale. The caller disposes it. A large tensor's memory is
    /// advised onto 2 MiB pages before it is filled (<see cref="HugePages"/>).
    /// </summary>
    public Tensor Dequantize() => Dequantize(QuantizationKernels.Best);

    /// <summary><see cref="Dequantize()"/> with a chosen kernel (every kernel gives the same bits).</summary>
    internal Tensor Dequantize(QuantizationKernel kernel)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        QuantizationKernels.Require(kernel);
        if (SixteenBitType(Kind) is not null) return _codes.to_type(ScalarType.Float32);
        var weight = torch.empty(new[] { Rows, Columns }, ScalarType.Float32);
        try
        {
            var to = TensorMemory.Address(weight);
            HugePages.Advise(to, Rows * Columns * sizeof(float));
            // Fresh pages are zeroed into the cache as they fault in: ordinary stores beat streaming ones here.
            Fill((float*)to, kernel, streaming: false);
            return weight;
        }
        catch
        {
            weight.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes the weight into <paramref name="destination"/>, a contiguous fp32 CPU tensor of
    /// <see cref="Rows"/>·<see cref="Columns"/> elements (filled row-major whatever its shape), so that one buffer
    /// can serve every dequantization of layers of the same shape: the fastest way to dequantize repeatedly, as
    /// the buffer's pages stay mapped. From <see cref="StreamingBytes"/> up it is written with non-temporal stores.
    /// </summary>
    public void DequantizeInto(Tensor destination) => DequantizeInto(destination, QuantizationKernels.Best);

    /// <summary><see cref="DequantizeInto(Tensor)"/> with a chosen kernel.</summary>
    internal void DequantizeInto(Tensor destination, QuantizationKernel kernel)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        QuantizationKernels.Require(kernel);
        if (destination.dtype != ScalarType.Float32) throw new ArgumentException($"the destination is {destination.dtype}, not Float32", nameof(destination));
        long n = Rows * Columns;
        if (destination.numel() != n) throw new ArgumentException($"the destination has {destination.numel()} elements, not {Rows} x {Columns}", nameof(destination));
        if (SixteenBitType(Kind) is not null)
        {
            // Widening bf16 or fp16 to fp32 is exact; torch's conversion is vectorized and spread over its threads.
            using var rows = destination.view(Rows, Columns);
            rows.copy_(_codes);
            return;
        }
        var to = (float*)TensorMemory.Address(destination);
        bool streaming = kernel != QuantizationKernel.Scalar && n * sizeof(float) >= StreamingBytes && (long)to % 64 == 0
            && (Kind != BaseQuantization.Int8 || Columns % 16 == 0);
        Fill(to, kernel, streaming);
        GC.KeepAlive(destination);
    }

    /// <summary>
    /// The destination size from which <see cref="DequantizeInto(Tensor)"/> writes past the caches (16 MiB): larger
    /// than a core's L2, where a product that reads the weight next would not find it cached anyway.
    /// </summary>
    internal const long StreamingBytes = 16L << 20;

    /// <summary>Writes the weight to <paramref name="to"/> (Rows·Columns floats) on up to torch's thread count of threads.</summary>
    void Fill(float* to, QuantizationKernel kernel, bool streaming)
    {
        long n = Rows * Columns;
        if (Kind == BaseQuantization.Int8)
        {
            var q = (sbyte*)_codeData;
            var a = (float*)_scaleData;
            long columns = Columns;
            ForParts(Rows, Parts(n), (first, end) => RowwiseInt8.Dequantize(q, a, columns, to, first, end, kernel, streaming));
            GC.KeepAlive(this);
            return;
        }
        var codes = _codeData;
        int blockSize = BlockSize;
        fixed (float* levels = CodeBooks.Levels(Kind))
        fixed (float* map = CodeBooks.Dynamic8Bit)
        {
            var scales = DoubleQuantization ? new BlockScales(_scaleData, _secondData, map, _offset) : new BlockScales((float*)_scaleData);
            var l = levels;
            ForParts(ScaleCount, Parts(n), (first, end) => FourBitBlocks.Dequantize(codes, n, blockSize, l, scales, to, first, end, kernel, streaming));
        }
        // The loops read the codes through raw pointers: the tensors that own them must outlive the loops.
        GC.KeepAlive(this);
    }

    /// <summary>
    /// Each block's scale as <see cref="Dequantize()"/> uses it (for a double-quantized weight, read back from 8 bits),
    /// or each row's for Int8; none for the 16-bit types.
    /// </summary>
    internal float[] Scales()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_scales is null) return Array.Empty<float>();
        if (Kind == BaseQuantization.Int8 || !DoubleQuantization) return _scales.data<float>().ToArray();
        var result = new float[ScaleCount];
        fixed (float* map = CodeBooks.Dynamic8Bit)
        {
            var scales = new BlockScales(_scaleData, _secondData, map, _offset);
            for (long b = 0; b < result.Length; b++) result[b] = scales[b];
        }
        GC.KeepAlive(this);
        return result;
    }

    /// <summary>How many threads share <paramref name="n"/> elements.</summary>
    static int Parts(long n) => QuantizationKernels.Parts(n, ElementsPerPart);

    /// <summary>Runs <paramref name="body"/> on <paramref name="parts"/> contiguous ranges of [0, <paramref name="count"/>), in parallel when there are several.</summary>
    static void ForParts(long count, int parts, Action<long, long> body)
    {
        parts = (int)Math.Min(parts, count);
        if (parts <= 1)
        {
            body(0, count);
            return;
        }
        long perPart = (count + parts - 1) / parts;
        Parallel.For(0, parts, part => body(Math.Min(count, part * perPart), Math.Min(count, (part + 1) * perPart)));
    }

    /// <summary>Frees the codes and scales.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _codes.Dispose();
        _scales?.Dispose();
        _secondAbsmax?.Dispose();
    }
}
