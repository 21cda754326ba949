using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Diagnostics;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Checkpoints;

/// <summary>A model folder holding only pytorch_model.bin (single or sharded) loads end to end like its safetensors twin.</summary>
public sealed class PyTorchBinModelTests : IDisposable
{
    readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    static readonly LogitsCases Cases = new()
    {
        InputIds = new[] { new long[] { 2, 17, 33, 59, 8, 3 }, new long[] { 2, 41, 5, 3, 0, 0 } },
        AttentionMask = new[] { new long[] { 1, 1, 1, 1, 1, 1 }, new long[] { 1, 1, 1, 1, 0, 0 } },
    };

    /// <summary>The tiny BERT's config.json with its weights as model.safetensors, in a temporary folder.</summary>
    string SafetensorsTwin()
    {
        var folder = Path.Combine(_dir.Path, "safetensors");
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(CheckpointAssets.TinyBertBinFolder, "config.json"), Path.Combine(folder, "config.json"));
        File.Copy(CheckpointAssets.TinyBertSafetensors, Path.Combine(folder, "model.safetensors"));
        return folder;
    }

    static float[][] Logits(string folder, List<string>? log = null)
    {
        using var model = PretrainedModel.Load(folder, log: log is null ? null : log.Add);
        return Cases.Run(model);
    }

    [Fact]
    public void PretrainedModel_loads_a_folder_holding_only_pytorch_model_bin()
    {
        Directory.GetFiles(CheckpointAssets.TinyBertBinFolder).Select(Path.GetFileName).Should().BeEquivalentTo("config.json", "pytorch_model.bin");
        var log = new List<string>();

        var fromBin = Logits(CheckpointAssets.TinyBertBinFolder, log);
        var fromSafetensors = Logits(SafetensorsTwin());

        LogitsCases.MaxAbsDifference(fromBin, fromSafetensors).Should().Be(0);
        fromBin.Should().HaveCount(2).And.AllSatisfy(row => row.Should().HaveCount(2));
        LogitsCases.MaxAbsDifference(new[] { fromBin[0] }, new[] { fromBin[1] }).Should().BeGreaterThan(1e-4f, "different inputs give different logits");
        log.Should().BeEmpty("every tensor of the checkpoint is used and nothing is created");
    }

    [Fact]
    public void PretrainedModel_loads_a_sharded_pytorch_model_bin_folder()
    {
        LogitsCases.MaxAbsDifference(Logits(CheckpointAssets.TinyBertShardedBinFolder), Logits(SafetensorsTwin())).Should().Be(0);
    }

    [Fact]
    public void The_bin_checkpoint_loads_every_parameter_of_the_model()
    {
        var checkpoint = CheckpointFolder.Open(CheckpointAssets.TinyBertBinFolder);
        using var model = ModelFactory.Create(checkpoint.Config, checkpoint.Config.NumLabels);
        using var weights = checkpoint.OpenWeights();

        var report = WeightLoader.Load(model, weights);

        report.LoadedTensors.Should().Be(model.parameters().Count());
        report.CreatedModules.Should().BeEmpty();
        report.IgnoredTensors.Should().BeEmpty("bert.embeddings.position_ids is a known buffer");
        checkpoint.Config.Labels.Should().Equal("negative", "positive");
    }
}
