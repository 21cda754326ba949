using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Training;
using TorchSharp;

namespace Microsoft.ML.LoRA.Tests.Training;

/// <summary>
/// A tiny random LLaMA-family decoder (Llama, Mistral, Qwen2) learns a learnable task with LoRA, trained from token ids (the family's
/// tokenizers are read from the checkpoint's own files, which these tests do not need): the label says whether a
/// marker token occurs anywhere in the sequence, and the classifier reads only the last token, so the answer has to
/// travel there through causal attention.
/// </summary>
public class LlamaTrainingTests
{
    [Theory]
    [InlineData("llama")]
    [InlineData("mistral")]   // an 8-token window: a marker further back reaches the last token through both layers
    [InlineData("qwen2")]     // biases on q_proj, k_proj and v_proj; no window (use_sliding_window defaults to false)
    public void Lora_training_lowers_the_loss_and_learns_the_task(string modelType)
    {
        var train = SyntheticTask.Make(320, seed: 1);
        var validation = SyntheticTask.Make(100, seed: 2);
        var config = LlamaFixtures.Parse(LlamaFixtures.TinyConfig(modelType, ("sliding_window", 8)));
        SequenceClassifier model;
        lock (TorchRandomLock.Sync)
        {
            torch.manual_seed(3);
            model = ModelFactory.Create(config, 2);
            LoraInjector.Apply(model, new LoraOptions { Rank = 8, Alpha = 16, Dropout = 0.0 });
        }
        using var _ = model;
        model.named_parameters().Any(p => p.name.EndsWith("self_attn.q_proj.bias", StringComparison.Ordinal))
            .Should().Be(modelType == "qwen2", "Qwen2 is the family member with q/k/v biases");
        var settings = new TrainingSettings { Epochs = 6, BatchSize = 16, LearningRate = 5e-3, Seed = 7, WarmupFraction = 0.1 };
        var trainer = new ClassifierTrainer(model, settings, padTokenId: 0);
        var before = trainer.Evaluate(validation);

        var history = trainer.Train(train, validation);

        var after = trainer.Evaluate(validation);
        history.Epochs.Last().TrainLoss.Should().BeLessThan(history.Epochs.First().TrainLoss * 0.7);
        after.Loss.Should().BeLessThan(before.Loss);
        after.Accuracy.Should().BeGreaterThan(0.85, $"half the examples are positive; accuracy before training was {before.Accuracy:P0}");
    }
}
