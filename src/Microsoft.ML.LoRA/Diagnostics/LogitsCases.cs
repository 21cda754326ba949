using System.Text.Json;
using Microsoft.ML.LoRA.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Diagnostics;

/// <summary>
/// A parity case file (<c>cases.json</c>): token ids and attention masks, with the reference logits a model should
/// produce without and with its adapter. Used to check our implementation against Hugging Face's math.
/// </summary>
public sealed class LogitsCases
{
    public required long[][] InputIds { get; init; }
    public required long[][] AttentionMask { get; init; }
    public long[][]? TokenTypeIds { get; init; }
    public float[][]? Logits { get; init; }
    public float[][]? LogitsWithAdapter { get; init; }
    public double Tolerance { get; init; } = 1e-4;

    /// <summary>Reads a cases file; only input_ids is required.</summary>
    public static LogitsCases Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Cases file not found: {path}", path);
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var root = doc.RootElement;
        long[][] Longs(string key) => root.GetProperty(key).EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetInt64()).ToArray()).ToArray();
        float[][]? Floats(string key) => root.TryGetProperty(key, out var e)
            ? e.EnumerateArray().Select(r => r.EnumerateArray().Select(v => (float)v.GetDouble()).ToArray()).ToArray() : null;
        if (!root.TryGetProperty("input_ids", out _)) throw new InvalidDataException($"{path}: no input_ids");
        var ids = Longs("input_ids");
        var mask = root.TryGetProperty("attention_mask", out _) ? Longs("attention_mask") : ids.Select(r => r.Select(_ => 1L).ToArray()).ToArray();
        if (ids.Length == 0 || ids.Any(r => r.Length != ids[0].Length) || mask.Length != ids.Length || mask.Any(r => r.Length != ids[0].Length))
            throw new InvalidDataException($"{path}: input_ids and attention_mask must be equal-length rows of the same shape");
        return new LogitsCases
        {
            InputIds = ids,
            AttentionMask = mask,
            TokenTypeIds = root.TryGetProperty("token_type_ids", out _) ? Longs("token_type_ids") : null,
            Logits = Floats("logits"),
            LogitsWithAdapter = Floats("logits_with_adapter"),
            Tolerance = root.TryGetProperty("tolerance", out var t) ? t.GetDouble() : 1e-4,
        };
    }

    /// <summary>Runs the model (in eval mode, without gradients) on the cases and returns its logits, one row per case.</summary>
    public float[][] Run(SequenceClassifier model)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        model.eval();
        var input = new ModelInput(ToTensor(InputIds), ToTensor(AttentionMask), TokenTypeIds is null ? null : ToTensor(TokenTypeIds));
        var logits = model.forward(input);
        var flat = logits.to_type(ScalarType.Float32).data<float>().ToArray();
        int width = (int)logits.shape[1];
        return Enumerable.Range(0, InputIds.Length).Select(i => flat.AsSpan(i * width, width).ToArray()).ToArray();
    }

    /// <summary>Largest absolute difference between two logit tables (infinity when their shapes differ).</summary>
    public static double MaxAbsDifference(float[][] a, float[][] b)
    {
        if (a.Length != b.Length || a.Where((r, i) => r.Length != b[i].Length).Any()) return double.PositiveInfinity;
        double max = 0;
        for (int i = 0; i < a.Length; i++)
            for (int j = 0; j < a[i].Length; j++)
                max = Math.Max(max, Math.Abs(a[i][j] - b[i][j]));
        return max;
    }

    static Tensor ToTensor(long[][] rows)
    {
        var flat = rows.SelectMany(r => r).ToArray();
        return torch.tensor(flat, new long[] { rows.Length, rows[0].Length });
    }
}
