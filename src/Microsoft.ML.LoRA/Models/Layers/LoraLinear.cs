using Microsoft.ML.LoRA.Models.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// A linear layer that can carry an adapter: y = x·W0ᵀ + b plus the adapter's part (plain LoRA:
/// scaling · B(A(dropout(x)))). Every linear layer of our models is one of these, so an adapter is attached in place
/// and the parameter names stay those of Hugging Face and PEFT: <c>weight</c>, <c>bias</c>, <c>lora_A.weight</c>
/// [r, in], <c>lora_B.weight</c> [out, r]. With <see cref="FanInFanOut"/> the base weight is stored [in, out] as
/// GPT-2's Conv1D stores it; the factors keep the usual layout.
/// </summary>
/// <remarks>
/// Two choices are kept apart: how the frozen base multiplies (<see cref="IBaseProduct"/>: fp32, the type of
/// <see cref="ComputeDtype"/>, or an int8 snapshot) and which adapter rides on it (<see cref="ILinearAdapter"/>,
/// attached with <see cref="Attach"/>). The layer only combines them: the model families build the layer without
/// knowing any adapter, and an adapter never sees the weight's number format.
/// </remarks>
public sealed class LoraLinear : nn.Module<Tensor, Tensor>
{
    /// <summary>Input features.</summary>
    public long InFeatures { get; }
    /// <summary>Output features.</summary>
    public long OutFeatures { get; }
    /// <summary>True when the weight is stored [in, out] (GPT-2 Conv1D).</summary>
    public bool FanInFanOut { get; }

    /// <summary>The frozen (or, without an adapter, ordinary) weight.</summary>
    /// <exception cref="InvalidOperationException">The base is quantized (<see cref="IsQuantized"/>): its weight is kept packed; <see cref="BaseWeight"/> gives it dense.</exception>
    public Parameter weight => _weight ?? throw new InvalidOperationException(
        $"this layer's base weight is quantized ({_quantized?.Weight.Kind}) and kept packed, not as a parameter; BaseWeight() gives it dense");

    Parameter? _weight;
    /// <summary>The bias, or null.</summary>
    public Parameter? bias { get; private set; }

    ILinearAdapter? _adapter;

    /// <summary>The product over <see cref="weight"/> that training and fp32 (or <see cref="ComputeDtype"/>) inference run.</summary>
    IBaseProduct _product;

    /// <summary>
    /// The layer's eval-mode matrix (weight plus an enabled adapter's update) rounded to int8 by
    /// <see cref="QuantizeToInt8"/>, or null. Used only in eval mode without autograd; anything that changes what the
    /// layer computes through this class (train mode, merging, attaching or switching the adapter) drops it.
    /// </summary>
    IBaseProduct? _int8;

    ScalarType? _computeDtype;
    bool _adapterEnabled = true;

    static readonly string[] AdapterSegments = AdapterNames.All.Select(n => "." + n + ".").ToArray();
    static readonly string[] AdapterEndings = AdapterNames.All.Select(n => "." + n).ToArray();

    /// <summary>Creates the layer with HF-style initialisation: weight ~ N(0, initStd), bias = 0.</summary>
    public LoraLinear(long inFeatures, long outFeatures, bool hasBias = true, bool fanInFanOut = false, double initStd = 0.02)
        : base("LoraLinear")
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        FanInFanOut = fanInFanOut;
        var shape = fanInFanOut ? new[] { inFeatures, outFeatures } : new[] { outFeatures, inFeatures };
        lock (TorchRandomLock.Sync)   // drawn from libtorch's global generator: never in the middle of a seeded fit
            _weight = new Parameter(torch.empty(shape).normal_(0, initStd), requires_grad: true);
        register_parameter("weight", _weight);
        if (hasBias)
        {
            bias = new Parameter(torch.zeros(outFeatures), requires_grad: true);
            register_parameter("bias", bias);
        }
        _product = new DenseProduct(this);
    }

    /// <summary>The adapter this layer carries, or null.</summary>
    public ILinearAdapter? Adapter => _adapter;
    /// <summary>True once an adapter is attached.</summary>
    public bool HasAdapter => _adapter is not null;
    /// <summary>Adapter rank (0 without an adapter).</summary>
    public int Rank => _adapter?.Rank ?? 0;
    /// <summary>Alpha the adapter was attached with (0 without an adapter).</summary>
    public double Alpha => _adapter?.Alpha ?? 0;
    /// <summary>Factor applied to B·A (0 without an adapter).</summary>
    public double Scaling => _adapter?.Scaling ?? 0;
    /// <summary>True while the adapter is folded into <see cref="weight"/>.</summary>
    public bool Merged { get; private set; }
    /// <summary>When false the adapter is skipped (the base layer alone runs).</summary>
    public bool AdapterEnabled
    {
        get => _adapterEnabled;
        set { if (value != _adapterEnabled) DropInt8(); _adapterEnabled = value; }
    }

    /// <summary>The A factor's weight [r, in] (throws without an adapter).</summary>
    public Parameter LoraA => Required.A;
    /// <summary>The B factor's weight [out, r] (throws without an adapter).</summary>
    public Parameter LoraB => Required.B;

    ILinearAdapter Required => _adapter ?? throw new InvalidOperationException("this layer has no adapter");

    /// <summary>
    /// True when the frozen base weight is kept quantized (<see cref="QuantizeBase"/>): packed NF4, FP4 or int8 codes,
    /// dequantized for each product. The layer then has no <c>weight</c> parameter.
    /// </summary>
    public bool IsQuantized => _quantized is not null;

    /// <summary>The base weight's format: <see cref="BaseQuantization.None"/> unless <see cref="IsQuantized"/>.</summary>
    public BaseQuantization BaseQuantization => _quantized?.Weight.Kind ?? BaseQuantization.None;

    /// <summary>Bytes the base weight occupies as kept (packed codes and scales when quantized).</summary>
    public long BaseWeightBytes => _quantized?.Weight.StorageBytes ?? _weight!.numel() * _weight.element_size();

    /// <summary>The device the layer's tensors live on (a quantized base lives on the CPU).</summary>
    public Device Device => _weight?.device ?? torch.CPU;

    /// <summary>The product over the packed weight when the base is quantized, else null.</summary>
    QuantizedProduct? _quantized => _product as QuantizedProduct;

    /// <summary>True while the layer multiplies in int8 in eval mode (see <see cref="QuantizeToInt8"/>).</summary>
    public bool IsInt8 => _int8 is not null;

    /// <summary>
    /// The type the base matrix product runs in, or null (default) for the weight's own type. With
    /// <see cref="ScalarType.BFloat16"/> the input, weight and bias are rounded to bfloat16 for the product (which
    /// accumulates in fp32) and the output comes back in the input's type, as torch.autocast("cpu", torch.bfloat16)
    /// treats nn.Linear. Parameters, gradients, optimizer state and the adapter stay fp32. See
    /// <see cref="MixedPrecision"/>.
    /// </summary>
    public ScalarType? ComputeDtype
    {
        get => _computeDtype;
        set
        {
            _computeDtype = value;
            if (_quantized is { } quantized) { quantized.Compute = value; return; }
            _product.Dispose();
            _product = value is ScalarType compute ? new CastProduct(this, compute) : new DenseProduct(this);
        }
    }

    /// <summary>
    /// True for the name of an adapter's parameter (<c>...lora_A.weight</c>, <c>...lora_B.weight</c>, any name of
    /// <see cref="AdapterNames.All"/> as a module of the name, or ending the name as PEFT's files store DoRA's
    /// <c>...lora_magnitude_vector</c>) rather than a base parameter. The one such test: saving, loading, counting,
    /// merging and previewing an adapter file all ask it.
    /// </summary>
    public static bool IsAdapterParameter(string name) =>
        AdapterSegments.Any(s => name.Contains(s, StringComparison.Ordinal)) || AdapterEndings.Any(e => name.EndsWith(e, StringComparison.Ordinal));

    /// <summary>
    /// Attaches <paramref name="adapter"/>, registering its modules on this layer under their own names. An adapter
    /// made for this layer's shape starts as the identity on the output (plain LoRA's B starts at zero); the layer
    /// adds its part from the next forward on.
    /// </summary>
    /// <exception cref="InvalidOperationException">The layer already has an adapter.</exception>
    /// <exception cref="ArgumentException">The adapter registers a name missing from <see cref="AdapterNames.All"/>, or its factors do not fit this layer.</exception>
    public void Attach(ILinearAdapter adapter)
    {
        ArgumentNullException.ThrowIfNull(adapter);
        if (HasAdapter) throw new InvalidOperationException("this layer already has an adapter");
        var unknown = adapter.Modules.Select(m => m.Name).Where(n => !AdapterNames.All.Contains(n)).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException(
                $"the adapter registers {string.Join(", ", unknown.Select(n => $"'{n}'"))}, which AdapterNames.All does not list, " +
                "so its parameters would be taken for the base model's when the model is saved or loaded", nameof(adapter));
        if (adapter.Rank <= 0) throw new ArgumentException("the adapter's rank must be positive", nameof(adapter));
        if (!adapter.A.shape.SequenceEqual(new[] { adapter.Rank, InFeatures }) || !adapter.B.shape.SequenceEqual(new[] { OutFeatures, adapter.Rank }))
            throw new ArgumentException(
                $"a rank-{adapter.Rank} adapter with A [{string.Join(", ", adapter.A.shape)}] and B [{string.Join(", ", adapter.B.shape)}] " +
                $"does not fit a layer of {InFeatures} inputs and {OutFeatures} outputs", nameof(adapter));
        foreach (var (name, module) in adapter.Modules) register_module(name, module);
        DropInt8();
        _adapter = adapter;
    }

    /// <summary>
    /// Keeps the frozen base weight quantized from now on (QLoRA): the weight is packed in <paramref name="quantization"/>'s
    /// format (<see cref="QuantizedWeight"/>), the dense <c>weight</c> parameter is released, and each product
    /// dequantizes it for that product alone, in the forward and the backward pass. The bias, an adapter and its
    /// gradients stay as they are. The packed weight lives in memory only: nothing saves it.
    /// </summary>
    /// <exception cref="InvalidOperationException">The base is quantized already, or an adapter is merged into it.</exception>
    public void QuantizeBase(QuantizedBase quantization)
    {
        ArgumentNullException.ThrowIfNull(quantization);
        if (quantization.Kind == BaseQuantization.None) throw new ArgumentException("BaseQuantization.None keeps the weight as it is; nothing to quantize", nameof(quantization));
        if (IsQuantized) throw new InvalidOperationException("this layer's base is quantized already");
        if (Merged) throw new InvalidOperationException("the adapter is merged into the weight; unmerge it before quantizing the base");
        QuantizedWeight packed;
        using (torch.NewDisposeScope())
        using (torch.no_grad())
        {
            using var dense = _product.DenseWeight();
            packed = QuantizedWeight.Quantize(dense, quantization.Kind, quantization.DoubleQuantization);
        }
        DropInt8();
        _product.Dispose();
        _product = new QuantizedProduct(this, packed, _computeDtype);
        ConditionallyRegisterParameter("weight", (Parameter?)null);
        _weight!.Dispose();
        _weight = null;
    }

    /// <summary>
    /// Takes the adapter off this layer and returns it, its modules no longer registered here: the layer computes its
    /// base product alone again, and the adapter keeps its parameters and scaling, so <see cref="Attach"/> can put it
    /// back. The caller owns what it gets (dispose its modules once it is not needed).
    /// </summary>
    /// <exception cref="InvalidOperationException">The layer has no adapter, or the adapter is merged into the weight (unmerge it first).</exception>
    public ILinearAdapter Detach()
    {
        var adapter = Required;
        if (Merged) throw new InvalidOperationException("the adapter is merged into the weight; unmerge it before taking it off");
        foreach (var (name, _) in adapter.Modules) register_module(name, null!);   // TorchSharp unregisters a name given null
        DropInt8();
        _adapter = null;
        return adapter;
    }

    /// <summary>Sets the scaling factor directly (used when loading adapters with per-module alpha).</summary>
    /// <exception cref="InvalidOperationException">The layer has no adapter.</exception>
    public void SetScaling(double alpha, double scaling)
    {
        Required.SetScaling(alpha, scaling);
        DropInt8();
    }

    public override Tensor forward(Tensor x)
    {
        if (_int8 is not null && !training && !torch.is_grad_enabled()) return _int8.Multiply(x);
        var y = _product.Multiply(x);
        if (_adapter is null || Merged || !AdapterEnabled) return y;
        return _adapter.Forward(this, x, y, training);
    }

    /// <summary>
    /// The frozen base weight as a dense [out, in] tensor whatever format the layer keeps it in (dequantized where it
    /// is packed; a view of the stored weight where it is dense, so do not write to it). For adapter variants whose
    /// forward needs the base; call it inside a dispose scope.
    /// </summary>
    public Tensor BaseWeight()
    {
        using var _ = torch.no_grad();
        return _product.DenseWeight();
    }

    /// <summary>
    /// Replaces the frozen base weight with <paramref name="weight"/> [out, in], for initialisations that move part of the
    /// weight into the adapter (PiSSA, OLoRA keep the residual here). Not while the adapter is merged.
    /// </summary>
    public void ReplaceBaseWeight(Tensor weight)
    {
        if (Merged) throw new InvalidOperationException("the adapter is merged into the weight; unmerge it first");
        if (!weight.shape.SequenceEqual(new[] { OutFeatures, InFeatures }))
            throw new ArgumentException($"the weight has shape [{string.Join(", ", weight.shape)}], the layer [{OutFeatures}, {InFeatures}]", nameof(weight));
        DropInt8();
        using var _ = torch.no_grad();
        _product.StoreWeight(weight);
    }

    /// <summary>The update the adapter adds to the weight, in the weight's own layout. Call it inside a dispose scope (see TorchScopes).</summary>
    public Tensor DeltaWeight()
    {
        using var _ = torch.no_grad();
        var delta = Required.DeltaWeight();
        return FanInFanOut ? delta.t().contiguous() : delta;
    }

    /// <summary>
    /// The weight with the adapter folded in, as <see cref="Merge"/> would store it, in the weight's own layout,
    /// leaving the layer as it is (a merged checkpoint is written from it); the weight alone when there is no
    /// adapter or it is merged already. Call it inside a dispose scope.
    /// </summary>
    /// <exception cref="InvalidOperationException">The merged weight would hold NaN or infinite values.</exception>
    public Tensor MergedWeight()
    {
        using var _ = torch.no_grad();
        using var merged = _adapter is null || Merged ? _product.DenseWeight() : CheckedMerge();
        return FanInFanOut ? merged.t().contiguous() : merged.clone();
    }

    /// <summary>
    /// The [out, in] matrix this layer multiplies by in eval mode (the weight, plus an enabled unmerged adapter's
    /// update), for a caller that folds the layer into another product; null when the product runs in another type
    /// than <paramref name="x"/>'s (<see cref="ComputeDtype"/>). Call it without autograd, inside a dispose scope.
    /// </summary>
    internal Tensor? EvalWeight(Tensor x) => _product.MultipliesIn(x.dtype) ? EvalWeight() : null;

    /// <summary>The [out, in] matrix this layer multiplies by in eval mode in its own number type (inside a dispose scope, without autograd).</summary>
    Tensor EvalWeight()
    {
        var weight = _product.DenseWeight();
        if (_adapter is null || Merged || !AdapterEnabled) return weight;
        using (weight) return _adapter.Merge(weight);
    }

    /// <summary>
    /// Rounds what this layer multiplies by in eval mode (the weight plus an enabled adapter's update) to int8, so
    /// that in eval mode without autograd the layer multiplies in int8 (<see cref="Int8Weight"/>: PyTorch's dynamic
    /// quantization). A snapshot: call it once the weights are final; training mode, <see cref="Merge"/>,
    /// <see cref="Unmerge"/> and adapter changes drop it (weights changed in place by other code do not).
    /// </summary>
    public void QuantizeToInt8()
    {
        DropInt8();
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        _int8 = Int8Weight.Pack(EvalWeight(), bias);
    }

    /// <summary>Goes back to fp32 (or <see cref="ComputeDtype"/>) products after <see cref="QuantizeToInt8"/>.</summary>
    public void DropInt8()
    {
        _int8?.Dispose();
        _int8 = null;
    }

    public override void train(bool on = true)
    {
        if (on) DropInt8();
        base.train(on);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            DropInt8();
            _product.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <summary>
    /// Folds the adapter into the weight so inference costs what the base layer costs. A weight is never left
    /// holding NaN or infinity: when the merged weight would, the layer stays as it was, unmerged, and this throws.
    /// </summary>
    /// <exception cref="InvalidOperationException">The merged weight would hold NaN or infinite values (the adapter's factors, or the weight, hold some: a diverged fit); or the base is quantized.</exception>
    public void Merge()
    {
        if (_adapter is null || Merged) return;
        // Packing W + ΔW again would round the update away in part, and unmerging could not give W back: a quantized
        // base keeps its adapter apart. MergedWeight() still gives the dense merged weight (a merged checkpoint).
        if (IsQuantized)
            throw new InvalidOperationException(
                $"the base is quantized ({BaseQuantization}); merging would round the adapter's update into the packed weight. " +
                "Use MergedWeight() (or a merged checkpoint: MergedCheckpoint.Write, 'lora merge') for the dense merged weight");
        using (torch.NewDisposeScope())
        using (torch.no_grad())
        {
            var merged = CheckedMerge();
            DropInt8();
            _product.StoreWeight(merged);
        }
        Merged = true;
    }

    /// <summary>Takes the adapter back out of the weight.</summary>
    public void Unmerge()
    {
        if (_adapter is null || !Merged) return;
        DropInt8();
        using (torch.NewDisposeScope())
        using (torch.no_grad())
        {
            using var weight = _product.DenseWeight();
            _product.StoreWeight(_adapter.Unmerge(weight));
        }
        Merged = false;
    }

    /// <summary>The adapter's merged [out, in] weight, refused when it is not finite (inside a dispose scope, without autograd).</summary>
    Tensor CheckedMerge()
    {
        using var weight = _product.DenseWeight();
        var merged = Required.Merge(weight);
        using var finite = merged.isfinite();
        if (finite.all().item<bool>()) return merged;
        using var bad = finite.logical_not();
        long count = bad.sum().item<long>();
        merged.Dispose();
        throw new InvalidOperationException(
            $"merging the adapter into this [{OutFeatures} x {InFeatures}] layer would write {count} NaN or infinite value(s) into its weight " +
            "(its adapter factors, or the weight, are not finite: a diverged fit?); the layer was left unmerged");
    }
}
