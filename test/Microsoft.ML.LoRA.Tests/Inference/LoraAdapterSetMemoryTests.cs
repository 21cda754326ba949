using Microsoft.ML.LoRA.Inference;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Inference;

/// <summary>What a set holds in native memory: each adapter's own tensors while it is in the set, nothing once removed.</summary>
[Collection(LiveHeapCollection.Name)]
public class LoraAdapterSetMemoryTests
{
    [Fact]
    public void Adding_adapters_costs_their_own_bytes_and_removing_them_gives_those_bytes_back()
    {
        using var dir = new TempDir();
        var baseFolder = TinyCheckpoint.Create("distilbert", dir.File("base"), hidden: 256, layers: 2, heads: 4);
        var options = new LoraOptions { Rank = 64, LoraQuery = true, LoraKey = true, LoraValue = true, LoraProjection = true, LoraMlp = true, Dropout = 0 };
        var adapters = Enumerable.Range(0, 4).Select(i => RandomAdapters.Write(baseFolder, dir.File($"adapter-{i}"), options, seed: i, numLabels: 2)).ToList();
        using var set = LoraAdapterSet.Open(baseFolder, numLabels: 2);
        set.Logits(new[] { "warm the allocator up" });
        long empty = LiveHeap.Settled();

        for (int i = 0; i < adapters.Count; i++) set.Add($"a{i}", adapters[i]);
        long held = adapters.Select((_, i) => set.AdapterBytes($"a{i}")).Sum();
        long full = LiveHeap.Settled();
        for (int i = 0; i < adapters.Count; i++) set.Remove($"a{i}");
        long emptied = LiveHeap.Settled();

        held.Should().BeGreaterThan(4L << 20, "the adapters are large enough to see on the heap");
        (full - empty).Should().BeInRange((long)(held * 0.9), (long)(held * 1.25), "the set holds each adapter's tensors, and no copy of the base");
        (emptied - empty).Should().BeLessThan(held / 10, "removed adapters are freed");
    }
}
