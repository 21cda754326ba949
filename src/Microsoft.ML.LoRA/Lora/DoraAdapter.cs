using Microsoft.ML.LoRA.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Lora;

/// <summary>
/// DoRA, weight-decomposed LoRA (Liu et al. 2024), as PEFT computes it (<c>use_dora=True</c>): the adapted weight is
/// m ⊙ (W + s·B·A) / ‖W + s·B·A‖, each output row of the low-rank-updated weight rescaled to a trained magnitude m
/// [out] that starts at the rows' norms of W (so a fresh adapter changes nothing). The norm is treated as a constant in
/// the backward pass (the paper's section 4.3, and PEFT). A and B are plain LoRA's (<see cref="LoraAdapter"/>); m is
/// the weight of a module named <c>lora_magnitude_vector</c>, which PEFT's files store as
/// <c>&lt;layer&gt;.lora_magnitude_vector</c>.
/// </summary>
public sealed class DoraAdapter : ILinearAdapter
{
    readonly LoraLinear _layer;
    readonly LoraAdapter _lora;
    readonly Magnitude _magnitude;
    Tensor? _mergedNorm;

    /// <summary>The module that holds m as its <c>weight</c>, registered on the layer as <c>lora_magnitude_vector</c>.</summary>
    sealed class Magnitude : nn.Module
    {
        public Magnitude(Tensor norms) : base(AdapterNames.LoraMagnitudeVector)
        {
            weight = new Parameter(norms);
            RegisterComponents();
        }

        // Registered under its field name, as PEFT's DoraLinearLayer.weight.
#pragma warning disable IDE1006
        public readonly Parameter weight;
#pragma warning restore IDE1006
    }

    /// <summary>A fresh DoRA adapter for <paramref name="layer"/>: plain LoRA's A and B (B zero) and m = the row norms of its weight.</summary>
    public DoraAdapter(LoraLinear layer, int rank, double alpha, double dropout, LoraScaling scaling, LoraInit init)
    {
        _layer = layer;
        _lora = new LoraAdapter(layer.InFeatures, layer.OutFeatures, rank, alpha, dropout, scaling, init, layer.Device);
        using (torch.NewDisposeScope())
        using (torch.no_grad())
        {
            var norms = torch.linalg.norm(layer.BaseWeight(), dims: new long[] { 1 }).detach().clone();
            _magnitude = new Magnitude(norms.MoveToOuterDisposeScope());
        }
        Modules = _lora.Modules.Append((AdapterNames.LoraMagnitudeVector, (nn.Module)_magnitude)).ToList();
    }

    /// <inheritdoc/>
    public IReadOnlyList<(string Name, nn.Module Module)> Modules { get; }
    /// <inheritdoc/>
    public int Rank => _lora.Rank;
    /// <inheritdoc/>
    public double Alpha => _lora.Alpha;
    /// <inheritdoc/>
    public double Scaling => _lora.Scaling;
    /// <inheritdoc/>
    public Parameter A => _lora.A;
    /// <inheritdoc/>
    public Parameter B => _lora.B;
    /// <summary>The trained magnitude m, one value per output.</summary>
    public Parameter MagnitudeVector => _magnitude.weight;

    /// <inheritdoc/>
    public void SetScaling(double alpha, double scaling) => _lora.SetScaling(alpha, scaling);

    /// <summary>W + s·B·A, without gradient (inside a dispose scope).</summary>
    Tensor Updated(Tensor weight)
    {
        using var _ = torch.no_grad();
        using var delta = _lora.DeltaWeight();
        return weight.add(delta);
    }

    /// <summary>The norm of each output row of <paramref name="updated"/> (W + s·B·A).</summary>
    static Tensor RowNorms(Tensor updated) => torch.linalg.norm(updated, dims: new long[] { 1 });

    /// <summary>m / <paramref name="norms"/> as a column [out, 1], without gradient: what merging scales the rows by.</summary>
    Tensor RowFactors(Tensor norms) => _magnitude.weight.detach().div(norms).unsqueeze(1);

    /// <inheritdoc/>
    public Tensor Forward(LoraLinear layer, Tensor x, Tensor y, bool training)
    {
        using var scope = torch.NewDisposeScope();
        var weight = layer.BaseWeight();
        var scale = _magnitude.weight.div(RowNorms(Updated(weight)));   // m / ‖W + sBA‖: gradient to m only
        bool drop = training && _lora.Dropout > 0 && _lora.Dropout < 1;
        Tensor input = x, baseResult;
        if (drop)
        {
            // PEFT: with dropout in training the base part is recomputed from the dropped input.
            using Scalar keep = 1.0 / (1.0 - _lora.Dropout);
            input = Models.Kernels.Dropout.Unscaled(x, _lora.Dropout).mul_(keep);
            baseResult = torch.nn.functional.linear(input, weight);
        }
        else baseResult = layer.bias is { } bias ? y.sub(bias) : y.alias();
        using Scalar one = 1.0, s = Scaling;
        var loraResult = torch.nn.functional.linear(torch.nn.functional.linear(input, A), B);
        var extra = scale.sub(one).mul(baseResult).add_(scale.mul(loraResult).mul_(s));
        return y.add(extra).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public Tensor DeltaWeight()
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var weight = _layer.BaseWeight();
        var updated = Updated(weight);
        return updated.mul(RowFactors(RowNorms(updated))).sub_(weight).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public Tensor Merge(Tensor weight)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var updated = Updated(weight);
        var norms = RowNorms(updated);
        _mergedNorm?.Dispose();
        _mergedNorm = norms.clone().DetachFromDisposeScope();   // Unmerge divides by the same factor
        return updated.mul(RowFactors(norms)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public Tensor Unmerge(Tensor mergedWeight)
    {
        if (_mergedNorm is null) throw new InvalidOperationException("this DoRA adapter was not merged");
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var result = mergedWeight.div(RowFactors(_mergedNorm)).sub_(_lora.DeltaWeight());
        _mergedNorm.Dispose();
        _mergedNorm = null;
        return result.MoveToOuterDisposeScope();
    }
}
