using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// An adapter a <see cref="LoraLinear"/> carries: the trainable low-rank part added to a frozen linear layer. Plain
/// LoRA is one variant; others (DoRA, which rescales the adapted weight by a learned magnitude per output, so it
/// merges differently) implement the same members, and the layer, the model families and everything that saves,
/// loads or merges layers need not know which one they hold.
/// </summary>
/// <remarks>
/// Weights are exchanged in the usual [out, in] layout whatever the layer stores (GPT-2's Conv1D keeps [in, out]);
/// the layer transposes. Every member that returns a tensor is called without autograd except
/// <see cref="Forward"/>; the caller disposes what it gets, inside a dispose scope.
/// </remarks>
public interface ILinearAdapter
{
    /// <summary>
    /// The modules the layer registers on itself, in this order, under these names (each one of
    /// <see cref="AdapterNames.All"/>). Registered on the layer rather than under a module of the adapter's own, so
    /// their parameters are named as PEFT names them: <c>&lt;layer&gt;.lora_A.weight</c>, <c>&lt;layer&gt;.lora_B.weight</c>.
    /// </summary>
    IReadOnlyList<(string Name, nn.Module Module)> Modules { get; }

    /// <summary>The rank r of the update.</summary>
    int Rank { get; }

    /// <summary>The alpha the adapter was made (or last scaled) with.</summary>
    double Alpha { get; }

    /// <summary>The factor applied to B·A.</summary>
    double Scaling { get; }

    /// <summary>Sets <see cref="Alpha"/> and <see cref="Scaling"/> directly (an adapter loaded with a per-module alpha).</summary>
    void SetScaling(double alpha, double scaling);

    /// <summary>The A factor's weight [r, in].</summary>
    Parameter A { get; }

    /// <summary>The B factor's weight [out, r].</summary>
    Parameter B { get; }

    /// <summary>
    /// The layer's output with the adapter: <paramref name="y"/> is the base product x·Wᵀ + b for input
    /// <paramref name="x"/>, and the result may be y itself, changed in place. <paramref name="training"/> turns on
    /// the adapter's dropout. <paramref name="layer"/> is the layer that carries the adapter, for a variant whose
    /// update depends on the frozen base (DoRA normalises by the adapted weight's column norms): its
    /// <see cref="LoraLinear.BaseWeight"/> and <see cref="LoraLinear.bias"/>; plain LoRA does not read it.
    /// </summary>
    Tensor Forward(LoraLinear layer, Tensor x, Tensor y, bool training);

    /// <summary>The adapter's update to the weight, [out, in] (plain LoRA: scaling · B·A).</summary>
    Tensor DeltaWeight();

    /// <summary>
    /// The weight with the adapter folded in, as a new [out, in] tensor (plain LoRA: weight + <see cref="DeltaWeight"/>),
    /// so that the base product over it alone gives what <see cref="Forward"/> gives in eval mode.
    /// <paramref name="weight"/> is the base weight [out, in], read only.
    /// </summary>
    Tensor Merge(Tensor weight);

    /// <summary>The inverse of <see cref="Merge"/>: the base weight back from a merged one, as a new [out, in] tensor.</summary>
    Tensor Unmerge(Tensor mergedWeight);
}
