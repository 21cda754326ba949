using Microsoft.ML.LoRA.Models.Kernels;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.LoRA.Models.Quantization;

/// <summary>
/// The base product over a packed weight (<see cref="QuantizedWeight"/>: NF4, FP4 or int8), as QLoRA computes it:
/// the weight is dequantized for the product and dropped right after it, in the forward pass and again in the backward
/// pass, so no dense copy of it outlives one layer's product. The bias stays an ordinary parameter of the layer.
/// </summary>
/// <remarks>
/// Autograd would keep the dequantized weight alive from the forward to the backward pass (the input's gradient
/// needs it), which would bring the memory of the dense weights back; the product is therefore one autograd node that
/// saves nothing and dequantizes again when the input's gradient is asked for. The weight itself never has a gradient.
/// </remarks>
internal sealed class QuantizedProduct : IBaseProduct
{
    readonly LoraLinear _layer;
    QuantizedWeight _weight;

    /// <summary>Keeps <paramref name="weight"/> ([out, in], owned from now on) as <paramref name="layer"/>'s base.</summary>
    public QuantizedProduct(LoraLinear layer, QuantizedWeight weight, ScalarType? compute)
    {
        _layer = layer;
        _weight = weight;
        Compute = compute;
    }

    /// <summary>The packed weight.</summary>
    public QuantizedWeight Weight => _weight;

    /// <summary>
    /// The floating type the product runs in, or null for the input's own: the weight is dequantized to fp32 and
    /// rounded to this type, as bitsandbytes' <c>bnb_4bit_compute_dtype</c>.
    /// </summary>
    public ScalarType? Compute { get; set; }

    public Tensor Multiply(Tensor x)
    {
        var y = x.requires_grad && torch.is_grad_enabled()
            ? Node.Apply(x, new Call(_weight, Compute))
            : Product(x, _weight, Compute);
        if (_layer.bias is null) return y;
        using (y) return y.add(_layer.bias);
    }

    public bool MultipliesIn(ScalarType inputType) => (Compute ?? inputType) == inputType;

    public Tensor DenseWeight() => _weight.Dequantize();

    public void StoreWeight(Tensor weight)
    {
        var packed = QuantizedWeight.Quantize(weight, _weight.Kind, _weight.DoubleQuantization, _weight.BlockSize);
        _weight.Dispose();
        _weight = packed;
    }

    public void Dispose() => _weight.Dispose();

    /// <summary>x·Wᵀ without autograd, the weight dequantized for this product only.</summary>
    static Tensor Product(Tensor x, QuantizedWeight weight, ScalarType? compute)
    {
        using var _ = torch.no_grad();
        using var dense = Scratch.Dequantized(weight);
        if (compute is not ScalarType type || type == x.dtype)
        {
            using var w = dense.dtype == x.dtype ? dense.alias() : dense.to_type(x.dtype);
            return F.linear(x, w);
        }
        using var xc = x.to_type(type);
        using var wc = dense.to_type(type);
        using var yc = F.linear(xc, wc);
        return yc.to_type(x.dtype);
    }

    /// <summary>
    /// One fp32 buffer per weight shape and thread that every dequantization of that shape fills in turn: a fresh
    /// tensor the size of a 7B model's feed-forward weight (180 MB) costs more in first-touch page faults than in
    /// filling it, while a mapped buffer is filled at memory speed (3-4x faster, see docs/lora-options.md). A product
    /// reads its buffer before the next dequantization on the thread, and nothing keeps it: the caller gets an alias.
    /// The buffers live as long as the thread; a model holds one of each of its weight shapes (a few per model).
    /// </summary>
    static class Scratch
    {
        [ThreadStatic] static Dictionary<(long Rows, long Columns), Tensor>? _buffers;

        public static Tensor Dequantized(QuantizedWeight weight)
        {
            var buffers = _buffers ??= new Dictionary<(long, long), Tensor>();
            var shape = (weight.Rows, weight.Columns);
            if (!buffers.TryGetValue(shape, out var buffer))
            {
                using var scope = torch.NewDisposeScope();
                buffer = torch.empty(new[] { weight.Rows, weight.Columns }, ScalarType.Float32);
                scope.Detach(buffer);
                buffers[shape] = buffer;
            }
            weight.DequantizeInto(buffer);
            return buffer.alias();
        }
    }

    /// <summary>What the node needs besides the input: the packed weight and the compute type.</summary>
    sealed record Call(QuantizedWeight Weight, ScalarType? Compute);

    /// <summary>The autograd node: vars are x [..., in] and the <see cref="Call"/>; it saves nothing.</summary>
    sealed class Node : torch.autograd.SingleTensorFunction<Node>
    {
        public override string Name => nameof(QuantizedProduct);

        public static Tensor Apply(Tensor x, Call call)
        {
            var y = apply(x, call);
            FunctionHandles.ReleaseForwardOutput();
            return y;
        }

        public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
        {
            var call = (Call)vars[1];
            ctx.save_data("call", call);
            ctx.set_materialize_grads(false);
            var x = (Tensor)vars[0];
            return FunctionHandles.KeepForwardOutput(ctx, Product(x, call.Weight, call.Compute));
        }

        [ThreadStatic] static List<Tensor>? _returned;

        public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
        {
            FunctionHandles.Release(ref _returned);
            try
            {
                var call = (Call)ctx.get_data("call");
                using var _ = torch.no_grad();
                // y = x·Wᵀ, so dx = dy·W: the weight dequantized again, for this product only.
                using var dense = Scratch.Dequantized(call.Weight);
                Tensor gradInput;
                if (call.Compute is ScalarType type && type != gradOutput.dtype)
                {
                    using var gc = gradOutput.to_type(type);
                    using var wc = dense.to_type(type);
                    using var dx = gc.matmul(wc);
                    gradInput = dx.to_type(gradOutput.dtype);
                }
                else
                {
                    using var w = dense.dtype == gradOutput.dtype ? dense.alias() : dense.to_type(gradOutput.dtype);
                    gradInput = gradOutput.matmul(w);
                }
                _returned = new List<Tensor> { gradInput };
                return new List<Tensor> { gradInput, null! };
            }
            finally
            {
                gradOutput.Dispose();
            }
        }
    }
}
