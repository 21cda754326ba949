using Microsoft.ML.LoRA.Models;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.LoRA.Training;

/// <summary>
/// What <see cref="ClassifierTrainer"/> minimises and how it judges a validation pass: cross-entropy and accuracy for
/// classifiers (<see cref="Classification"/>), mean squared error for a one-output regression model
/// (<see cref="RegressionObjective"/>).
/// </summary>
public abstract class TrainingObjective
{
    /// <summary>Cross-entropy over the model's classes; validation is judged by accuracy, ties by loss.</summary>
    public static TrainingObjective Classification { get; } = new ClassificationObjective();

    /// <summary>Whether a validation pass has an accuracy; without one the best epoch is the one with the lowest loss.</summary>
    public abstract bool HasAccuracy { get; }

    /// <summary>The mean loss of a batch's outputs [batch, labels] against the examples <paramref name="batch"/> names (differentiable).</summary>
    public abstract Tensor Loss(Tensor outputs, IReadOnlyList<LabeledExample> data, int[] batch);

    /// <summary>The summed loss of a batch and how many of its examples are right (0 where <see cref="HasAccuracy"/> is false).</summary>
    public abstract (double LossSum, long Correct) Sums(Tensor outputs, IReadOnlyList<LabeledExample> data, int[] batch);

    /// <summary>Throws <see cref="ArgumentException"/> when an example does not fit a model with <paramref name="numLabels"/> outputs.</summary>
    public abstract void CheckLabels(IReadOnlyList<LabeledExample> examples, int numLabels, string what);

    sealed class ClassificationObjective : TrainingObjective
    {
        public override bool HasAccuracy => true;

        public override Tensor Loss(Tensor outputs, IReadOnlyList<LabeledExample> data, int[] batch)
        {
            using var labels = Labels(data, batch);
            return F.cross_entropy(outputs, labels);
        }

        public override (double LossSum, long Correct) Sums(Tensor outputs, IReadOnlyList<LabeledExample> data, int[] batch)
        {
            using var scope = torch.NewDisposeScope();
            var labels = Labels(data, batch);
            double loss = F.cross_entropy(outputs, labels, reduction: nn.Reduction.Sum).item<float>();
            return (loss, outputs.argmax(1).eq(labels).sum().item<long>());
        }

        public override void CheckLabels(IReadOnlyList<LabeledExample> examples, int numLabels, string what)
        {
            foreach (var e in examples)
                if (e.Label < 0 || e.Label >= numLabels)
                    throw new ArgumentException($"A {what} example has label {e.Label}, outside the model's {numLabels} classes.");
        }

        static Tensor Labels(IReadOnlyList<LabeledExample> data, int[] batch) =>
            torch.tensor(batch.Select(i => (long)data[i].Label).ToArray());
    }
}

/// <summary>
/// Mean squared error of a one-output model against <see cref="LabeledExample.Target"/>. With standardisation the
/// model learns <c>(y - Shift) / Scale</c>, a target of mean 0 and standard deviation 1 whatever the label's units,
/// and <see cref="FoldInto"/> then rescales the output layer so the model predicts y itself: the losses it reports
/// are in standardised units (1.0 is what predicting the training mean scores).
/// </summary>
public sealed class RegressionObjective : TrainingObjective
{
    RegressionObjective(double shift, double scale)
    {
        Shift = shift;
        Scale = scale;
    }

    /// <summary>Subtracted from every target before training (the training mean, or 0).</summary>
    public double Shift { get; }

    /// <summary>Targets are divided by it after the shift (the training standard deviation, or 1).</summary>
    public double Scale { get; }

    /// <summary>Raw targets: the model learns y as it is.</summary>
    public static RegressionObjective Raw { get; } = new(0, 1);

    /// <summary>
    /// Standardised targets: shifted by the training mean (only when the model's output layer has a bias to fold it
    /// into; GPT-2's and the LLaMA family's heads have none) and scaled by the training standard deviation.
    /// </summary>
    public static RegressionObjective Standardized(IReadOnlyList<LabeledExample> train, SequenceClassifier model)
    {
        if (train.Count == 0) throw new ArgumentException("The training set is empty.", nameof(train));
        double mean = train.Average(e => (double)e.Target);
        double variance = train.Sum(e => (e.Target - mean) * (e.Target - mean)) / train.Count;
        double std = Math.Sqrt(variance);
        bool hasBias = OutputLayer(model).bias is not null;
        double shift = hasBias ? mean : 0;
        // Without a shift the scale must cover the mean too: the root mean square of the targets.
        double scale = hasBias ? std : Math.Sqrt(variance + mean * mean);
        return new RegressionObjective(shift, scale > 1e-12 && double.IsFinite(scale) ? scale : 1);
    }

    public override bool HasAccuracy => false;

    public override Tensor Loss(Tensor outputs, IReadOnlyList<LabeledExample> data, int[] batch)
    {
        using var targets = Targets(data, batch);
        return F.mse_loss(outputs.view(-1).to_type(ScalarType.Float32), targets);
    }

    public override (double LossSum, long Correct) Sums(Tensor outputs, IReadOnlyList<LabeledExample> data, int[] batch)
    {
        using var scope = torch.NewDisposeScope();
        var targets = Targets(data, batch);
        return (F.mse_loss(outputs.view(-1).to_type(ScalarType.Float32), targets, reduction: nn.Reduction.Sum).item<float>(), 0);
    }

    public override void CheckLabels(IReadOnlyList<LabeledExample> examples, int numLabels, string what)
    {
        if (numLabels != 1) throw new ArgumentException($"A regression model has one output; this one has {numLabels}.");
        for (int i = 0; i < examples.Count; i++)
            if (!float.IsFinite(examples[i].Target))
                throw new ArgumentException($"{what} example {i + 1} has target {examples[i].Target}; a regression target must be a finite number.");
    }

    /// <summary>
    /// Rewrites the output layer so the model predicts raw values: weight (and a LoRA adapter's B on it) times
    /// <see cref="Scale"/>, bias times <see cref="Scale"/> plus <see cref="Shift"/>. Exact up to float rounding, and
    /// stored like any trained head, so saved models and exported PEFT adapters predict raw values.
    /// </summary>
    public void FoldInto(SequenceClassifier model)
    {
        if (Shift == 0 && Scale == 1) return;
        var layer = OutputLayer(model);
        using var _ = torch.no_grad();
        using Scalar scale = Scale, shift = Shift;
        layer.weight.mul_(scale);
        if (layer.bias is { } bias) bias.mul_(scale).add_(shift);
        if (layer.Adapter is { } adapter) adapter.B.mul_(scale);
    }

    /// <summary>The head's last linear layer, whose one output is the prediction.</summary>
    internal static LoraLinear OutputLayer(SequenceClassifier model)
    {
        var name = model.Layout.HeadModules[^1];
        return Lora.LoraInjector.LinearLayers(model).TryGetValue(name, out var layer)
            ? layer
            : throw new InvalidOperationException($"The {model.Config.ModelType} head has no linear layer '{name}'.");
    }

    Tensor Targets(IReadOnlyList<LabeledExample> data, int[] batch) =>
        torch.tensor(batch.Select(i => (float)((data[i].Target - Shift) / Scale)).ToArray());
}
