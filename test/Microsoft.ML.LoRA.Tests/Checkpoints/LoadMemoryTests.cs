using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Checkpoints;

/// <summary>
/// Loading a checkpoint never holds a second copy of the base weights: while the model loads, the live C heap (where
/// libtorch keeps tensors) grows by the model's own weights plus at most one checkpoint tensor in flight, never by
/// twice the weights, as reading the whole file before building the model would; from one file or from shards.
/// </summary>
[Collection(LiveHeapCollection.Name)]
public class LoadMemoryTests
{
    /// <summary>Splits the folder's model.safetensors into three shards with a model.safetensors.index.json, as large Hub checkpoints come.</summary>
    static void Shard(string folder)
    {
        var single = Path.Combine(folder, "model.safetensors");
        var all = SafeTensorsFile.Open(single).ReadAllFloat32().ToList();
        var weightMap = new JsonObject();
        for (int shard = 0; shard < 3; shard++)
        {
            string file = $"model-{shard + 1:D5}-of-00003.safetensors";
            var part = all.Where((_, i) => i % 3 == shard).ToList();
            SafeTensorsWriter.Save(Path.Combine(folder, file), part);
            foreach (var (name, _) in part) weightMap[name] = file;
        }
        foreach (var (_, tensor) in all) tensor.Dispose();
        File.Delete(single);
        File.WriteAllText(Path.Combine(folder, "model.safetensors.index.json"), new JsonObject { ["metadata"] = new JsonObject(), ["weight_map"] = weightMap }.ToJsonString());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_heap_peaks_at_the_weights_plus_one_tensor_in_flight(bool sharded)
    {
        using var dir = new TempDir();
        var folder = TinyCheckpoint.Create("llama", dir.File("llama"), hidden: 256, layers: 8, heads: 4);
        var entries = SafeTensorsFile.Open(Path.Combine(folder, "model.safetensors")).Entries;
        long fileWeights = entries.Sum(e => e.End - e.Begin);
        long largest = entries.Max(e => e.End - e.Begin);
        if (sharded) Shard(folder);
        fileWeights.Should().BeGreaterThan(8 * largest, "the check needs weights spread over many tensors");

        long before = LiveHeap.Settled();
        long peak = before;
        using var done = new CancellationTokenSource();
        var sampler = new Thread(() =>
        {
            while (!done.IsCancellationRequested)
            {
                long now = LiveHeap.Bytes();
                if (now > peak) peak = now;
                Thread.SpinWait(50);
            }
        }) { IsBackground = true };
        sampler.Start();
        using var model = PretrainedModel.Load(folder);
        done.Cancel();
        sampler.Join();
        long held = LiveHeap.Settled() - before;
        long modelBytes = model.parameters().Sum(p => p.numel() * p.element_size());

        modelBytes.Should().BeGreaterThanOrEqualTo(fileWeights, "the model holds every checkpoint tensor (and a new head)");
        held.Should().BeInRange((long)(modelBytes * 0.9), (long)(modelBytes * 1.2), "the loaded model costs its weights");
        (peak - before).Should().BeLessThan(modelBytes + 2 * largest + (4L << 20),
            "at most one checkpoint tensor is held beside the model's own weights while it loads (two copies would be {0} bytes)", 2 * modelBytes);
    }
}
