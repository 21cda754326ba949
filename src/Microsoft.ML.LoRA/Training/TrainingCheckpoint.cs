using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.ML.LoRA.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Training;

/// <summary>
/// The training checkpoint <see cref="ClassifierTrainer"/> writes to <see cref="TrainingSettings.CheckpointDirectory"/>
/// and resumes from: one safetensors file (<see cref="FileName"/>, written atomically) holding every trainable
/// parameter, AdamW's first and second moments, the best epoch's weights, libtorch's generator state, and in its
/// metadata the loop's position (epoch, next batch, optimizer step), the per-epoch history, the step losses, the
/// early-stopping counters and a fingerprint of the settings, data and model it belongs to. The shuffling generator
/// (<see cref="System.Random"/>) cannot be saved; resuming replays the seeded shuffles of the epochs already begun.
/// </summary>
public static class TrainingCheckpoint
{
    /// <summary>The checkpoint's file name inside <see cref="TrainingSettings.CheckpointDirectory"/>.</summary>
    public const string FileName = "training-checkpoint.safetensors";

    const int FormatVersion = 1;
    const string StateKey = "lora.training_state";
    const string Param = "param.", ExpAvg = "adamw.exp_avg.", ExpAvgSq = "adamw.exp_avg_sq.", Best = "best.", Rng = "rng.cpu";

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>The checkpoint file in <paramref name="directory"/>.</summary>
    public static string PathIn(string directory) => Path.Combine(directory, FileName);

    /// <summary>Whether <paramref name="directory"/> holds a training checkpoint.</summary>
    public static bool Exists(string? directory) => directory is not null && File.Exists(PathIn(directory));

    /// <summary>Writes the checkpoint atomically; returns its size in bytes.</summary>
    internal static long Save(string directory, CheckpointState state, IReadOnlyList<(string name, Parameter parameter)> trainable,
        AdamWOptimizer optimizer, IReadOnlyDictionary<string, Tensor>? best)
    {
        Directory.CreateDirectory(directory);
        var path = PathIn(directory);
        using var scope = torch.NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>();
        var moments = optimizer.Moments();
        foreach (var (name, p) in trainable)
        {
            tensors[Param + name] = p;
            var (m, v) = moments[p];
            tensors[ExpAvg + name] = m;
            tensors[ExpAvgSq + name] = v;
        }
        if (best is not null)
            foreach (var (name, t) in best) tensors[Best + name] = t;
        tensors[Rng] = torch.random.get_rng_state();
        var metadata = new Dictionary<string, string> { [StateKey] = JsonSerializer.Serialize(state, Json) };
        using (torch.no_grad()) SafeTensorsWriter.Save(path, tensors, metadata);
        return new FileInfo(path).Length;
    }

    /// <summary>Reads the state of the checkpoint in <paramref name="directory"/> and refuses one of another run.</summary>
    internal static (CheckpointState State, SafeTensorsFile File) Open(string directory, CheckpointFingerprint expected)
    {
        var path = PathIn(directory);
        if (!File.Exists(path)) throw new FileNotFoundException($"No training checkpoint to resume from: {path} does not exist.", path);
        var file = SafeTensorsFile.Open(path);
        if (!file.Metadata.TryGetValue(StateKey, out var json))
            throw new InvalidDataException($"{path} is not a training checkpoint (its metadata has no '{StateKey}').");
        var state = JsonSerializer.Deserialize<CheckpointState>(json, Json)
            ?? throw new InvalidDataException($"{path}: the training state is empty.");
        if (state.Format != FormatVersion)
            throw new InvalidDataException($"{path} has checkpoint format {state.Format}; this version reads format {FormatVersion}.");
        var differs = expected.Differences(state.Fingerprint);
        if (differs.Count > 0)
            throw new InvalidDataException($"The training checkpoint {path} belongs to another run: its {string.Join(" and ", differs)} differ from this one's. " +
                "Resume with the settings and data the run was started with, or delete the checkpoint to start over.");
        return (state, file);
    }

    /// <summary>Copies the checkpoint's parameters, optimizer moments and generator state in; returns the best epoch's weights (or null).</summary>
    internal static Dictionary<string, Tensor>? Restore(SafeTensorsFile file, IReadOnlyList<(string name, Parameter parameter)> trainable, AdamWOptimizer optimizer)
    {
        var moments = optimizer.Moments();
        using (var scope = torch.NewDisposeScope())
        using (torch.no_grad())
        {
            foreach (var (name, p) in trainable)
            {
                Copy(file, Param + name, p);
                var (m, v) = moments[p];
                Copy(file, ExpAvg + name, m);
                Copy(file, ExpAvgSq + name, v);
            }
            torch.random.set_rng_state(file.ReadRaw(Rng));
        }
        if (!trainable.All(t => file.Contains(Best + t.name))) return null;
        return TorchScopes.Keep(() => trainable.ToDictionary(t => t.name, t => file.ReadRaw(Best + t.name)));
    }

    static void Copy(SafeTensorsFile file, string name, Tensor target)
    {
        if (!file.Contains(name)) throw new InvalidDataException($"{file.Path} has no tensor '{name}'.");
        var source = file.ReadRaw(name);
        if (!source.shape.SequenceEqual(target.shape) || source.dtype != target.dtype)
            throw new InvalidDataException($"{file.Path}: tensor '{name}' is {source.dtype}[{string.Join(", ", source.shape)}], the model's is {target.dtype}[{string.Join(", ", target.shape)}].");
        target.copy_(source);
    }
}

/// <summary>What a checkpoint belongs to: hashes of the training settings, the data, and the model with what trains in it.</summary>
internal sealed record CheckpointFingerprint(string Settings, string Data, string Model)
{
    public List<string> Differences(CheckpointFingerprint? other)
    {
        var d = new List<string>();
        if (other is null) return new List<string> { "fingerprint (none recorded)" };
        if (Settings != other.Settings) d.Add("training settings");
        if (Data != other.Data) d.Add("training or validation data");
        if (Model != other.Model) d.Add("model (base weights, fine-tuning method, LoRA settings or trainable parameters)");
        return d;
    }

    /// <summary>The fingerprint of a fit: settings that change the result, every example (token ids and label), the trainable parameters' names and shapes and <paramref name="modelIdentity"/>.</summary>
    public static CheckpointFingerprint Of(TrainingSettings s, int padTokenId, IReadOnlyList<LabeledExample> train, IReadOnlyList<LabeledExample>? validation,
        IReadOnlyList<(string name, Parameter parameter)> trainable, string? modelIdentity)
    {
        var settings = FormattableString.Invariant(
            $"epochs={s.Epochs};batch={s.BatchSize};lr={s.LearningRate:R};warmup={s.WarmupFraction:R};wd={s.WeightDecay:R};clip={s.MaxGradientNorm:R};accum={s.GradientAccumulationSteps};seed={s.Seed};patience={s.EarlyStoppingPatience};bucketing={s.LengthBucketing};precision={s.Precision};gc={s.GradientCheckpointing};inferenceBatch={s.InferenceBatchSize};pad={padTokenId}");
        using var data = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Add(IReadOnlyList<LabeledExample> examples)
        {
            data.AppendData(BitConverter.GetBytes(examples.Count));
            foreach (var e in examples)
            {
                data.AppendData(BitConverter.GetBytes(e.Label));
                data.AppendData(BitConverter.GetBytes(e.Text.InputIds.Length));
                data.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(e.Text.InputIds.AsSpan()));
                data.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(e.Text.TokenTypeIds.AsSpan()));
            }
        }
        Add(train);
        Add(validation ?? Array.Empty<LabeledExample>());
        var model = modelIdentity + "\n" + string.Join("\n", trainable.Select(t => $"{t.name}:{t.parameter.dtype}[{string.Join(",", t.parameter.shape)}]"));
        return new CheckpointFingerprint(Sha(settings), Convert.ToHexString(data.GetHashAndReset()).ToLowerInvariant(), Sha(model));
    }

    static string Sha(string text) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text))).ToLowerInvariant();
}

/// <summary>The loop's state in a checkpoint (the safetensors metadata, as JSON).</summary>
internal sealed record CheckpointState
{
    public int Format { get; init; } = 1;
    public CheckpointFingerprint? Fingerprint { get; init; }
    /// <summary>The epoch in progress (1-based); past the last epoch when <see cref="Finished"/>.</summary>
    public int Epoch { get; init; }
    /// <summary>The first batch of <see cref="Epoch"/> not yet trained on.</summary>
    public int NextBatch { get; init; }
    public long Step { get; init; }
    public long SamplesSeen { get; init; }
    public double EpochLossSum { get; init; }
    public long EpochLossCount { get; init; }
    public List<EpochSummary> Epochs { get; init; } = new();
    public List<float> StepLosses { get; init; } = new();
    public int BestEpoch { get; init; }
    public double BestAccuracy { get; init; }
    public double BestLoss { get; init; }
    public int SinceBest { get; init; }
    public bool StoppedEarly { get; init; }
    public bool Finished { get; init; }
    public double ElapsedSeconds { get; init; }
}
