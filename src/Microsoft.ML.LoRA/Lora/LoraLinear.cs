using Microsoft.ML.LoRA.Models.Kernels;
using TorchSharp.Modules;
using TorchSharp;
using static TorchSharp.torch;
using Dropout = Microsoft.ML.LoRA.Models.Kernels.Dropout;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.LoRA.Lora;

/// <summary>
/// A linear layer that can carry a LoRA adapter: y = x·W0ᵀ + b + scaling · B(A(dropout(x))).
/// Every linear layer of our models is one of these, so an adapter is attached in place and the parameter names stay
/// those of Hugging Face and PEFT: <c>weight</c>, <c>bias</c>, <c>lora_A.weight</c> [r, in], <c>lora_B.weight</c> [out, r].
/// With <see cref="FanInFanOut"/> the base weight is stored [in, out] as GPT-2's Conv1D stores it; the factors keep
/// the usual layout.
/// </summary>
public sealed class LoraLinear : nn.Module<Tensor, Tensor>
{
    /// <summary>Input features.</summary>
    public long InFeatures { get; }
    /// <summary>Output features.</summary>
    public long OutFeatures { get; }
    /// <summary>True when the weight is stored [in, out] (GPT-2 Conv1D).</summary>
    public bool FanInFanOut { get; }

    /// <summary>The frozen (or, without an adapter, ordinary) weight.</summary>
    public Parameter weight { get; private set; }
    /// <summary>The bias, or null.</summary>
    public Parameter? bias { get; private set; }

    Linear? lora_A;
    Linear? lora_B;
    double _dropout;

    /// <summary>True once an adapter is attached.</summary>
    public bool HasAdapter => lora_A is not null;
    /// <summary>Adapter rank (0 without an adapter).</summary>
    public int Rank { get; private set; }
    /// <summary>Alpha the adapter was attached with.</summary>
    public double Alpha { get; private set; }
    /// <summary>Factor applied to B·A.</summary>
    public double Scaling { get; private set; }
    /// <summary>True while B·A·scaling is folded into <see cref="weight"/>.</summary>
    public bool Merged { get; private set; }
    /// <summary>When false the adapter is skipped (the base layer alone runs).</summary>
    public bool AdapterEnabled
    {
        get => _adapterEnabled;
        set { if (value != _adapterEnabled) DropInt8(); _adapterEnabled = value; }
    }
    bool _adapterEnabled = true;

    /// <summary>
    /// The layer's eval-mode matrix (weight plus an enabled adapter's update) rounded to int8 by
    /// <see cref="QuantizeToInt8"/>, or null. Used only in eval mode without autograd; anything that changes what the
    /// layer computes through this class (train mode, merging, attaching or switching the adapter) drops it.
    /// </summary>
    Int8Weight? _int8;

    /// <summary>True while the layer multiplies in int8 in eval mode (see <see cref="QuantizeToInt8"/>).</summary>
    public bool IsInt8 => _int8 is not null;

    /// <summary>
    /// The type the base matrix product runs in, or null (default) for the weight's own type. With
    /// <see cref="ScalarType.BFloat16"/> the input, weight and bias are rounded to bfloat16 for the product (which
    /// accumulates in fp32) and the output comes back in the input's type, as torch.autocast("cpu", torch.bfloat16)
    /// treats nn.Linear. Parameters, gradients, optimizer state and the LoRA factors stay fp32. See
    /// <see cref="Models.MixedPrecision"/>.
    /// </summary>
    public ScalarType? ComputeDtype { get; set; }

    /// <summary>The A factor's weight [r, in] (throws without an adapter).</summary>
    public Parameter LoraA => lora_A?.weight ?? throw new InvalidOperationException("this layer has no adapter");
    /// <summary>The B factor's weight [out, r] (throws without an adapter).</summary>
    public Parameter LoraB => lora_B?.weight ?? throw new InvalidOperationException("this layer has no adapter");

    /// <summary>True for the name of an adapter factor (<c>...lora_A.weight</c>, <c>...lora_B.weight</c>) rather than a base parameter.</summary>
    public static bool IsAdapterParameter(string name) => name.Contains(".lora_A.") || name.Contains(".lora_B.");

    /// <summary>Creates the layer with HF-style initialisation: weight ~ N(0, initStd), bias = 0.</summary>
    public LoraLinear(long inFeatures, long outFeatures, bool hasBias = true, bool fanInFanOut = false, double initStd = 0.02)
        : base("LoraLinear")
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        FanInFanOut = fanInFanOut;
        var shape = fanInFanOut ? new[] { inFeatures, outFeatures } : new[] { outFeatures, inFeatures };
        lock (TorchRandomLock.Sync)   // drawn from libtorch's global generator: never in the middle of a seeded fit
            weight = new Parameter(torch.empty(shape).normal_(0, initStd), requires_grad: true);
        register_parameter("weight", weight);
        if (hasBias)
        {
            bias = new Parameter(torch.zeros(outFeatures), requires_grad: true);
            register_parameter("bias", bias);
        }
    }

    /// <summary>Attaches a fresh adapter of rank <paramref name="rank"/>; B starts at zero so the output is unchanged.</summary>
    public void AttachAdapter(int rank, double alpha, double dropout, LoraScaling scaling, LoraInit init)
    {
        if (HasAdapter) throw new InvalidOperationException("this layer already has an adapter");
        if (rank <= 0) throw new ArgumentOutOfRangeException(nameof(rank), "rank must be positive");
        var device = weight.device;
        lock (TorchRandomLock.Sync)   // nn.Linear and A's initialisation draw from libtorch's global generator
        {
            lora_A = nn.Linear(InFeatures, rank, hasBias: false, device: device);
            lora_B = nn.Linear(rank, OutFeatures, hasBias: false, device: device);
            using var _ = torch.no_grad();
            switch (init)
            {
                case LoraInit.KaimingUniform: nn.init.kaiming_uniform_(lora_A.weight, a: Math.Sqrt(5)); break;
                case LoraInit.Gaussian: nn.init.normal_(lora_A.weight, 0, 1.0 / rank); break;
                case LoraInit.ScaledRandn: lora_A.weight.normal_(0, 1.0 / Math.Sqrt(rank)); break;
            }
            nn.init.zeros_(lora_B.weight);
        }
        register_module("lora_A", lora_A);
        register_module("lora_B", lora_B);
        DropInt8();
        Rank = rank;
        Alpha = alpha;
        Scaling = LoraOptions.ScaleFor(scaling, rank, alpha);
        _dropout = dropout;
    }

    /// <summary>Sets the scaling factor directly (used when loading adapters with per-module alpha).</summary>
    public void SetScaling(double alpha, double scaling)
    {
        Alpha = alpha;
        Scaling = scaling;
        DropInt8();
    }

    public override Tensor forward(Tensor x)
    {
        if (_int8 is not null && !training && !torch.is_grad_enabled()) return _int8.Multiply(x);
        var y = BaseProduct(x);
        if (lora_A is null || lora_B is null || Merged || !AdapterEnabled) return y;
        // The scaling, and dropout's 1/(1-p), multiply the rank-r activations between A and B: a pass over
        // [tokens, r] rather than over x or the [tokens, out] result, forward and backward.
        bool drop = training && _dropout > 0 && _dropout < 1;
        using var dropped = drop ? Dropout.Unscaled(x, _dropout) : null;
        using var down = lora_A.forward(dropped ?? x);
        using Scalar factor = drop ? Scaling / (1.0 - _dropout) : Scaling;
        using var scaledDown = down.mul(factor);
        using var up = lora_B.forward(scaledDown);
        return y.add_(up);
    }

    Tensor BaseProduct(Tensor x)
    {
        using var transposed = FanInFanOut ? weight.t() : null;
        var w = transposed ?? weight;
        if (ComputeDtype is not ScalarType compute || compute == x.dtype) return F.linear(x, w, bias);
        // Casting the weight on every call (rather than caching a bf16 copy) costs one pass over the weight, a few
        // percent of the product, and can never serve a stale copy after the weight is loaded, merged or trained.
        using var xc = x.to_type(compute);
        using var wc = w.to_type(compute);
        using var bc = bias?.to_type(compute);
        using var yc = F.linear(xc, wc, bc);
        return yc.to_type(x.dtype);
    }

    /// <summary>The update this adapter adds to the weight, in the weight's own layout. Call it inside a dispose scope (see TorchScopes).</summary>
    public Tensor DeltaWeight()
    {
        using var _ = torch.no_grad();
        using Scalar scaling = Scaling;
        var delta = LoraB.matmul(LoraA).mul_(scaling);
        return FanInFanOut ? delta.t().contiguous() : delta;
    }

    /// <summary>
    /// The [out, in] matrix this layer multiplies by in eval mode (the weight, plus an enabled unmerged adapter's
    /// update), for a caller that folds the layer into another product; null when the product runs in another type
    /// than <paramref name="x"/>'s (<see cref="ComputeDtype"/>). Call it without autograd, inside a dispose scope.
    /// </summary>
    internal Tensor? EvalWeight(Tensor x)
    {
        if (ComputeDtype is ScalarType compute && compute != x.dtype) return null;
        return EvalWeight();
    }

    /// <summary>The [out, in] matrix this layer multiplies by in eval mode in its own number type (inside a dispose scope, without autograd).</summary>
    Tensor EvalWeight()
    {
        Tensor own;   // in the weight's own layout, as DeltaWeight
        if (!HasAdapter || Merged || !AdapterEnabled) own = weight.alias();
        else using (var delta = DeltaWeight()) own = weight.add(delta);
        if (!FanInFanOut) return own;
        using (own) return own.t();
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
        if (disposing) DropInt8();
        base.Dispose(disposing);
    }

    /// <summary>Folds the adapter into the weight so inference costs what the base layer costs.</summary>
    public void Merge()
    {
        if (!HasAdapter || Merged) return;
        DropInt8();
        using (torch.NewDisposeScope())
        using (torch.no_grad())
            weight.add_(DeltaWeight(), Scalars.One);
        Merged = true;
    }

    /// <summary>Takes the adapter back out of the weight.</summary>
    public void Unmerge()
    {
        if (!HasAdapter || !Merged) return;
        DropInt8();
        using (torch.NewDisposeScope())
        using (torch.no_grad())
            weight.sub_(DeltaWeight());
        Merged = false;
    }
}
