using Microsoft.ML.LoRA.Models;

namespace Microsoft.ML.LoRA.Training;

/// <summary>Hyper-parameters of the training loop (the ML.NET options class extends these).</summary>
public class TrainingSettings
{
    /// <summary>Passes over the training data. Default 3.</summary>
    public int Epochs { get; set; } = 3;
    /// <summary>Examples per forward/backward pass. Default 16.</summary>
    public int BatchSize { get; set; } = 16;
    /// <summary>
    /// Peak learning rate of AdamW. Default 1e-3, for LoRA (the best of 5e-4, 1e-3 and 2e-3 in our measurements; 2e-3
    /// collapsed on SST-2 at batch 16, docs/quality.md); full fine-tuning wants about 1e-4.
    /// </summary>
    public double LearningRate { get; set; } = 1e-3;
    /// <summary>Share of the optimizer steps spent warming the rate up linearly from 0; then it decays linearly to 0. Default 0.06.</summary>
    public double WarmupFraction { get; set; } = 0.06;
    /// <summary>AdamW weight decay, applied to weights but not to biases and normalisation parameters. Default 0.01.</summary>
    public double WeightDecay { get; set; } = 0.01;
    /// <summary>
    /// Clip the global gradient norm to this value; 0 or less disables clipping. Default 0 (no clipping), as a plain
    /// PyTorch loop: clipping at 1.0 (Hugging Face Trainer's default) cost full fine-tuning of a small pre-trained BERT
    /// on SST-2 about 1 point of accuracy and changed nothing measurable for LoRA (docs/quality.md).
    /// </summary>
    public double MaxGradientNorm { get; set; }
    /// <summary>Batches whose gradients are summed before each optimizer step. Default 1.</summary>
    public int GradientAccumulationSteps { get; set; } = 1;
    /// <summary>Seed for weight initialisation, dropout and shuffling: the same seed and data give the same model. Default 42.</summary>
    public int Seed { get; set; } = 42;
    /// <summary>Stop after this many epochs without a better validation score; null never stops early.</summary>
    public int? EarlyStoppingPatience { get; set; }
    /// <summary>Rows per batch when scoring (validation, Transform, evaluation). Default 64.</summary>
    public int InferenceBatchSize { get; set; } = 64;
    /// <summary>
    /// The number type of the linear layers' products, in training and in scoring (saved with the model). Default
    /// <see cref="ComputePrecision.Float32"/>. <see cref="ComputePrecision.BFloat16"/> (or <c>Auto</c>, bf16 where
    /// the CPU has AVX-512 BF16 or AMX) trains and scores MiniLM- and DistilBERT-size models much faster than Float32
    /// on such a CPU, at a small logit cost (measured: docs/benchmarks.md, "Why the kernels are built as they are").
    /// <see cref="ComputePrecision.Int8"/> trains in fp32 and scores with int8 products (any x86-64 CPU).
    /// </summary>
    public ComputePrecision Precision { get; set; } = ComputePrecision.Float32;
    /// <summary>
    /// Keep only each layer's input during the forward pass and recompute the layer in the backward pass: training
    /// memory falls to about one layer's activations (the largest share at long sequences or large batches), a step
    /// takes about one forward pass longer, and the result is the same. Default false.
    /// </summary>
    public bool GradientCheckpointing { get; set; }
    /// <summary>
    /// Group examples of similar length into batches: less padding, so training on text of varied length runs faster
    /// (measured on IMDb reviews: docs/benchmarks.md, "What the figures say"), but batches are less random, which
    /// cost full fine-tuning of a small pre-trained BERT on SST-2 about 1 point of accuracy (docs/quality.md). Default
    /// false: plain shuffled batches.
    /// </summary>
    public bool LengthBucketing { get; set; }

    /// <summary>
    /// A folder to write training checkpoints to (<see cref="TrainingCheckpoint.FileName"/>, replaced atomically each
    /// time): all trainable parameters (adapter and head), AdamW's moments and step, the learning-rate schedule's
    /// position, libtorch's generator state, the data-order position, the history so far, the best epoch's weights
    /// and the early-stopping counters. Written at the end of every epoch, every <see cref="CheckpointEverySteps"/>
    /// optimizer steps, and when training is cancelled (at an optimizer-step boundary). Default null: no checkpoints.
    /// </summary>
    public string? CheckpointDirectory { get; set; }

    /// <summary>
    /// With <see cref="CheckpointDirectory"/>: also write a checkpoint every this many optimizer steps. Default null:
    /// at the end of each epoch (and on cancellation) only.
    /// </summary>
    public int? CheckpointEverySteps { get; set; }

    /// <summary>
    /// Continue from the checkpoint in <see cref="CheckpointDirectory"/> instead of starting over: the fit then ends
    /// with the same weights, history and step losses as a run that was never interrupted (same settings and data).
    /// A checkpoint written for other settings, data or model is refused (<see cref="InvalidDataException"/> naming
    /// what differs); without a checkpoint the fit throws <see cref="FileNotFoundException"/>. Default false.
    /// </summary>
    public bool ResumeFromCheckpoint { get; set; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first setting that is out of range.</summary>
    public void ValidateTraining()
    {
        static void Check(bool ok, string name, object value, string rule)
        {
            if (!ok) throw new ArgumentException($"{name} {rule} (got {value}).", name);
        }
        Check(Epochs >= 1, nameof(Epochs), Epochs, "must be at least 1");
        Check(BatchSize >= 1, nameof(BatchSize), BatchSize, "must be at least 1");
        Check(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), LearningRate, "must be a positive number");
        Check(WarmupFraction >= 0 && WarmupFraction < 1, nameof(WarmupFraction), WarmupFraction, "must be in [0, 1)");
        Check(WeightDecay >= 0 && double.IsFinite(WeightDecay), nameof(WeightDecay), WeightDecay, "must be non-negative");
        Check(double.IsFinite(MaxGradientNorm), nameof(MaxGradientNorm), MaxGradientNorm, "must be a number");
        Check(GradientAccumulationSteps >= 1, nameof(GradientAccumulationSteps), GradientAccumulationSteps, "must be at least 1");
        Check(EarlyStoppingPatience is null or >= 1, nameof(EarlyStoppingPatience), EarlyStoppingPatience!, "must be at least 1 when set");
        Check(Enum.IsDefined(Precision), nameof(Precision), Precision, "must be Float32, BFloat16, Auto or Int8");
        Check(CheckpointEverySteps is null or >= 1, nameof(CheckpointEverySteps), CheckpointEverySteps!, "must be at least 1 when set");
        Check(!ResumeFromCheckpoint || !string.IsNullOrWhiteSpace(CheckpointDirectory), nameof(ResumeFromCheckpoint), ResumeFromCheckpoint, "needs CheckpointDirectory, the folder holding the checkpoint");
        Check(InferenceBatchSize >= 1, nameof(InferenceBatchSize), InferenceBatchSize, "must be at least 1");
    }
}
