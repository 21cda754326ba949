using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Training;

/// <summary>
/// AdamW (Adam with decoupled weight decay), the same update as <c>torch.optim.AdamW</c>:
/// p ← p·(1 − lr·wd); m ← β1·m + (1 − β1)·g; v ← β2·v + (1 − β2)·g²; p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε).
/// Written here rather than taken from TorchSharp because TorchSharp's version passes temporary Scalars to native code
/// (see <c>Scalars</c>). It holds state only for the parameters it is given, so frozen weights have none.
/// </summary>
public sealed class AdamWOptimizer : IDisposable
{
    sealed class Slot(Parameter parameter, double weightDecay, Tensor expAvg, Tensor expAvgSq)
    {
        public Parameter Parameter { get; } = parameter;
        public double WeightDecay { get; } = weightDecay;
        public Tensor ExpAvg { get; } = expAvg;
        public Tensor ExpAvgSq { get; } = expAvgSq;
    }

    readonly List<Slot> _slots = new();
    readonly double _beta1, _beta2, _eps;
    long _step;

    /// <summary>Creates the optimizer over parameter groups, each with its own weight decay.</summary>
    public AdamWOptimizer(IEnumerable<(IEnumerable<Parameter> Parameters, double WeightDecay)> groups, double learningRate,
        double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
    {
        LearningRate = learningRate;
        _beta1 = beta1;
        _beta2 = beta2;
        _eps = eps;
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        foreach (var (parameters, decay) in groups)
            foreach (var p in parameters)
            {
                var slot = new Slot(p, decay, torch.zeros_like(p), torch.zeros_like(p));
                scope.Detach(slot.ExpAvg, slot.ExpAvgSq);
                _slots.Add(slot);
            }
    }

    /// <summary>
    /// The optimizer fine-tuning uses: <paramref name="weightDecay"/> on weight matrices (and embedding tables, adapter
    /// factors), none on vectors: biases and normalisation scales and shifts. Hugging Face's trainers make the same
    /// split by name (bias, LayerNorm); by rank it holds for every family's names (LLaMA's input_layernorm, RMSNorm
    /// weights, DeBERTa's), with no list to keep.
    /// </summary>
    public static AdamWOptimizer WithDecayOnWeights(IReadOnlyList<(string name, Parameter parameter)> trainable, double weightDecay, double learningRate)
    {
        static bool NoDecay(Parameter p) => p.dim() < 2;
        var decay = trainable.Where(p => !NoDecay(p.parameter)).Select(p => p.parameter);
        var noDecay = trainable.Where(p => NoDecay(p.parameter)).Select(p => p.parameter);
        return new AdamWOptimizer(new[] { (decay, weightDecay), (noDecay, 0.0) }, learningRate);
    }

    /// <summary>The rate the next <see cref="Step"/> uses.</summary>
    public double LearningRate { get; set; }

    /// <summary>Optimizer steps taken.</summary>
    public long Steps => _step;

    /// <summary>Each parameter's first and second moments (the tensors themselves, not copies), for checkpoints.</summary>
    internal Dictionary<Parameter, (Tensor ExpAvg, Tensor ExpAvgSq)> Moments() =>
        _slots.ToDictionary<Slot, Parameter, (Tensor, Tensor)>(s => s.Parameter, s => (s.ExpAvg, s.ExpAvgSq), ReferenceEqualityComparer.Instance);

    /// <summary>Sets the step count a resumed optimizer continues from (the moments are restored through <see cref="Moments"/>).</summary>
    internal void RestoreSteps(long steps)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(steps);
        _step = steps;
    }

    /// <summary>Elements of optimizer state (two per trainable element).</summary>
    public long StateElements => _slots.Sum(s => s.ExpAvg.numel() + s.ExpAvgSq.numel());

    /// <summary>Updates every parameter that has a gradient.</summary>
    public void Step()
    {
        _step++;
        double lr = LearningRate;
        double correction1 = 1 - Math.Pow(_beta1, _step);
        double correction2 = 1 - Math.Pow(_beta2, _step);
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        using Scalar beta1 = _beta1, oneMinusBeta1 = 1 - _beta1, beta2 = _beta2, oneMinusBeta2 = 1 - _beta2;
        using Scalar eps = _eps, inverseSqrtCorrection2 = 1 / Math.Sqrt(correction2), minusStepSize = -lr / correction1;
        foreach (var slot in _slots)
        {
            var grad = slot.Parameter.grad;
            if (grad is null) continue;
            var p = slot.Parameter;
            if (slot.WeightDecay > 0)
            {
                using Scalar decay = 1 - lr * slot.WeightDecay;
                p.mul_(decay);
            }
            slot.ExpAvg.mul_(beta1).add_(grad, oneMinusBeta1);
            slot.ExpAvgSq.mul_(beta2).addcmul_(grad, grad, oneMinusBeta2);
            var denominator = slot.ExpAvgSq.sqrt().mul_(inverseSqrtCorrection2).add_(eps);
            p.addcdiv_(slot.ExpAvg, denominator, minusStepSize);
        }
    }

    public void Dispose()
    {
        foreach (var s in _slots)
        {
            s.ExpAvg.Dispose();
            s.ExpAvgSq.Dispose();
        }
        _slots.Clear();
    }
}
