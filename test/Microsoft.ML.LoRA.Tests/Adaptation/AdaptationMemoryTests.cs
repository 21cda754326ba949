using Microsoft.ML.LoRA.Adaptation;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Training;

namespace Microsoft.ML.LoRA.Tests.Adaptation;

/// <summary>Every step's tensors are released: the live C heap does not grow from epoch to epoch.</summary>
[Collection(LiveHeapCollection.Name)]
public class AdaptationMemoryTests
{
    [Fact]
    public void The_live_heap_stays_flat_over_epochs()
    {
        using var dir = new TempDir();
        var model = TinyCheckpoint.Create("distilbert", dir.File("base"), seed: 1);
        // One text of 30-odd tokens, so every batch has the same shape and shape-keyed native caches fill in the first epoch.
        var text = BertTinyMlm.Sms(0, 1)[0] + " " + BertTinyMlm.Sms(1, 1)[0];
        var heap = new Dictionary<int, long>();
        var progress = new SynchronousProgress<TrainingProgress>(p =>
        {
            if (p.Step % 8 != 0) return;   // the last step of each epoch
            GC.Collect();
            GC.WaitForPendingFinalizers();
            heap[p.Epoch] = LiveHeap.Bytes();
        });

        DomainAdaptation.Run(new DomainAdaptationOptions
        {
            ModelPath = model, OutputPath = dir.File("out"), Method = AdaptationMethod.Full, LearningRate = 1e-3, Epochs = 12, BatchSize = 8,
        }, Enumerable.Repeat(text, 64), progress);

        heap.Should().HaveCount(12);
        // Native libraries keep a few buffers of their own as they go (a one-off ~4 MB block around epoch 10 here, as
        // when fine-tuning a classifier), so the bound is loose; a step that kept its logits (~5 MB) or its graph would
        // pass it many times over in 64 steps.
        (heap[12] - heap[4]).Should().BeLessThan(16L << 20,
            $"no step keeps its tensors (live heap by epoch: {string.Join(", ", heap.Select(h => $"{h.Value / 1e6:F2}"))} MB)");
    }
}
