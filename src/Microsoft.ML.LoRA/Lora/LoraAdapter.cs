using Microsoft.ML.LoRA.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Lora;

/// <summary>
/// Plain LoRA (Hu et al. 2021, as PEFT implements it): the layer's output gains scaling · B(A(dropout(x))), with A
/// [r, in] and B [out, r] two bias-free linear modules named <c>lora_A</c> and <c>lora_B</c>; merging adds
/// scaling · B·A to the weight.
/// </summary>
public sealed class LoraAdapter : ILinearAdapter
{
    readonly Linear lora_A;
    readonly Linear lora_B;

    /// <summary>
    /// A fresh rank-<paramref name="rank"/> adapter for a layer of <paramref name="inFeatures"/> inputs and
    /// <paramref name="outFeatures"/> outputs: A initialised by <paramref name="init"/>, B zero, so the layer's output
    /// is unchanged until B trains.
    /// </summary>
    public LoraAdapter(long inFeatures, long outFeatures, int rank, double alpha, double dropout, LoraScaling scaling, LoraInit init,
        Device? device = null)
    {
        if (rank <= 0) throw new ArgumentOutOfRangeException(nameof(rank), "rank must be positive");
        Scaling = LoraOptions.ScaleFor(scaling, rank, alpha);
        Rank = rank;
        Alpha = alpha;
        Dropout = dropout;
        // nn.Linear and A's initialisation draw from libtorch's global generator; this order of draws (A's and B's
        // default initialisation, then A's own) is what seeded fits have always made, so their results repeat.
        lock (TorchRandomLock.Sync)
        {
            lora_A = nn.Linear(inFeatures, rank, hasBias: false, device: device);
            lora_B = nn.Linear(rank, outFeatures, hasBias: false, device: device);
            using var _ = torch.no_grad();
            switch (init)
            {
                case LoraInit.KaimingUniform: nn.init.kaiming_uniform_(lora_A.weight, a: Math.Sqrt(5)); break;
                case LoraInit.Gaussian: nn.init.normal_(lora_A.weight, 0, 1.0 / rank); break;
                case LoraInit.ScaledRandn: lora_A.weight.normal_(0, 1.0 / Math.Sqrt(rank)); break;
            }
            nn.init.zeros_(lora_B.weight);
        }
        Modules = new (string, nn.Module)[] { (AdapterNames.LoraA, lora_A), (AdapterNames.LoraB, lora_B) };
    }

    /// <inheritdoc/>
    public IReadOnlyList<(string Name, nn.Module Module)> Modules { get; }
    /// <inheritdoc/>
    public int Rank { get; }
    /// <inheritdoc/>
    public double Alpha { get; private set; }
    /// <inheritdoc/>
    public double Scaling { get; private set; }
    /// <summary>The probability with which each input element is dropped before A in training.</summary>
    public double Dropout { get; }

    /// <inheritdoc/>
    public Parameter A => lora_A.weight!;
    /// <inheritdoc/>
    public Parameter B => lora_B.weight!;

    /// <inheritdoc/>
    public void SetScaling(double alpha, double scaling)
    {
        Alpha = alpha;
        Scaling = scaling;
    }

    /// <inheritdoc/>
    public Tensor Forward(LoraLinear layer, Tensor x, Tensor y, bool training)
    {
        // The scaling, and dropout's 1/(1-p), multiply the rank-r activations between A and B: a pass over
        // [tokens, r] rather than over x or the [tokens, out] result, forward and backward.
        bool drop = training && Dropout > 0 && Dropout < 1;
        using var dropped = drop ? Models.Kernels.Dropout.Unscaled(x, Dropout) : null;
        using var down = lora_A.forward(dropped ?? x);
        using Scalar factor = drop ? Scaling / (1.0 - Dropout) : Scaling;
        using var scaledDown = down.mul(factor);
        using var up = lora_B.forward(scaledDown);
        return y.add_(up);
    }

    /// <inheritdoc/>
    public Tensor DeltaWeight()
    {
        using Scalar scaling = Scaling;
        return B.matmul(A).mul_(scaling);
    }

    /// <inheritdoc/>
    public Tensor Merge(Tensor weight)
    {
        using var delta = DeltaWeight();
        return weight.add(delta);
    }

    /// <inheritdoc/>
    public Tensor Unmerge(Tensor mergedWeight)
    {
        using var delta = DeltaWeight();
        return mergedWeight.sub(delta);
    }
}
