using System.Diagnostics;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.MLNet;
using Microsoft.ML.LoRA.Sweeps;
using Microsoft.ML.LoRA.Tests.Support;
using TorchSharp;

namespace Microsoft.ML.LoRA.Tests.Sweeps;

/// <summary>
/// A tiny BERT (hidden 32, random weights, real vocabulary), 64 training and 40 validation SMS spam rows, and one
/// uninterrupted 2 x 2 grid sweep (rank {2, 4} x learning rate {1e-3, 5e-3}, 1 epoch, ranked by log-loss) that the
/// tests inspect and compare other runs with.
/// </summary>
public sealed class SpamSweepFixture : IDisposable
{
    readonly TempDir _dir = new();

    public SpamSweepFixture()
    {
        BertPath = TinyCheckpoint.Bert(Path.Combine(_dir.Path, "bert"), hidden: 32, layers: 2, heads: 4, seed: 5);
        Train = Ml.Data.LoadFromEnumerable(TextData.Balanced(TextData.SmsSpam(0, 2000), 32));
        Validation = Ml.Data.LoadFromEnumerable(TextData.Balanced(TextData.SmsSpam(3000, 2000), 20));
        var clock = Stopwatch.StartNew();
        Grid = SweepRunner.Run(Ml, options => new ObservedEstimator(SweepPipelines.Multiclass(Ml)(options), GridModelParameters.Add),
            BaseOptions(), Train, Validation, GridOptions(Folder("grid")));
        GridTime = clock.Elapsed;
    }

    public MLContext Ml { get; } = new(seed: 1);
    public string BertPath { get; }
    public IDataView Train { get; }
    public IDataView Validation { get; }
    public SweepResult Grid { get; }
    public TimeSpan GridTime { get; }
    /// <summary>A parameter tensor of each model the grid sweep fitted, to check that the sweep disposed them.</summary>
    public List<torch.Tensor> GridModelParameters { get; } = new();

    public LoraTextClassifierOptions BaseOptions() => new()
    {
        ModelPath = BertPath, Epochs = 1, BatchSize = 16, MaxSequenceLength = 48, Seed = 3,
        Lora = new LoraOptions { Rank = 4, Alpha = 8 },
    };

    public static LoraSearchSpace GridSpace() => new() { Ranks = new[] { 2, 4 }, LearningRates = new[] { 1e-3, 5e-3 } };

    public static SweepOptions GridOptions(string folder) => new()
    {
        OutputFolder = folder, SearchSpace = GridSpace(), Strategy = SweepStrategy.Grid(), Metric = SweepMetric.LogLoss,
    };

    /// <summary>A fresh folder path inside the fixture's temporary folder.</summary>
    public string Folder(string name) => Path.Combine(_dir.Path, name);

    public void Dispose() => _dir.Dispose();
}
