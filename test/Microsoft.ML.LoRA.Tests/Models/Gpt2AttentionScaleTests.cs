using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Diagnostics;
using Microsoft.ML.LoRA.Export;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Onnx;
using Microsoft.ML.LoRA.Tests.Support;
using TorchSharp;

namespace Microsoft.ML.LoRA.Tests.Models;

/// <summary>
/// GPT-2's attention scaling switches, as GPT2Attention._attn applies them: <c>scale_attn_by_inverse_layer_idx</c>
/// divides layer i's scores by i + 1 and <c>scale_attn_weights: false</c> leaves out the 1/√head_dim. Scaling the
/// scores by f is scaling the queries by f, so each config must give exactly the logits of the default config with the
/// query third of every layer's c_attn scaled so; and the ONNX export must score the same.
/// </summary>
public class Gpt2AttentionScaleTests
{
    const int Layers = 3, Hidden = 32, Heads = 4;

    static string Variant(string baseFolder, string folder, string field, bool value)
    {
        Directory.CreateDirectory(folder);
        foreach (var file in Directory.GetFiles(baseFolder)) File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!.AsObject();
        config[field] = value;
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString());
        return folder;
    }

    static LogitsCases Cases(TempDir dir, int vocab)
    {
        var rng = new Random(5);
        var ids = Enumerable.Range(0, 3).Select(_ => Enumerable.Range(0, 10).Select(_ => rng.Next(3, vocab)).ToArray()).ToArray();
        var path = dir.File("cases.json");
        File.WriteAllText(path, new JsonObject
        {
            ["input_ids"] = new JsonArray(ids.Select(r => (JsonNode)new JsonArray(r.Select(i => (JsonNode)i).ToArray())).ToArray()),
            ["attention_mask"] = new JsonArray(ids.Select((r, n) => (JsonNode)new JsonArray(r.Select((_, j) => (JsonNode)(j < 10 - 3 * n ? 1 : 0)).ToArray())).ToArray()),
        }.ToJsonString());
        return LogitsCases.Load(path);
    }

    /// <summary>Loads <paramref name="folder"/> with the same random head every time (the tiny checkpoints have none).</summary>
    static SequenceClassifier Load(string folder)
    {
        lock (TorchRandomLock.Sync)
        {
            torch.manual_seed(11);
            return PretrainedModel.Load(folder);
        }
    }

    /// <summary>The default-config model with layer i's query weights and bias times <paramref name="factor"/>(i).</summary>
    static float[][] QueriesScaled(string folder, LogitsCases cases, Func<int, double> factor)
    {
        using var model = Load(folder);
        using var _ = torch.no_grad();
        for (int i = 0; i < Layers; i++)
        {
            var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            var weight = parameters[$"transformer.h.{i}.attn.c_attn.weight"];   // Conv1D: [in, 3 · hidden]
            var bias = parameters[$"transformer.h.{i}.attn.c_attn.bias"];
            int outputs = weight.shape[0] == 3 * Hidden ? 0 : 1;
            weight.narrow(outputs, 0, Hidden).mul_(factor(i));
            bias.narrow(0, 0, Hidden).mul_(factor(i));
        }
        return cases.Run(model);
    }

    public static IEnumerable<object[]> Switches => new[]
    {
        new object[] { "scale_attn_by_inverse_layer_idx", true },
        new object[] { "scale_attn_weights", false },
    };

    [Theory]
    [MemberData(nameof(Switches))]
    public void Each_switch_scales_the_scores_as_scaled_queries_would(string field, bool value)
    {
        using var dir = new TempDir();
        var plain = TinyCheckpoint.Create("gpt2", dir.File("plain"), hidden: Hidden, layers: Layers, heads: Heads, seed: 3);
        var switched = Variant(plain, dir.File("switched"), field, value);
        using var probe = Load(plain);
        var cases = Cases(dir, probe.Config.VocabSize);
        Func<int, double> factor = field == "scale_attn_weights" ? _ => Math.Sqrt(Hidden / Heads) : i => 1.0 / (i + 1);

        using var model = Load(switched);
        var logits = cases.Run(model);

        LogitsCases.MaxAbsDifference(logits, QueriesScaled(plain, cases, factor)).Should().BeLessThan(1e-5);
        LogitsCases.MaxAbsDifference(logits, cases.Run(probe)).Should().BeGreaterThan(1e-4, "the switch changes the output");
    }

    [Theory]
    [MemberData(nameof(Switches))]
    public void The_onnx_export_scales_alike(string field, bool value)
    {
        using var dir = new TempDir();
        var plain = TinyCheckpoint.Create("gpt2", dir.File("plain"), hidden: Hidden, layers: Layers, heads: Heads, seed: 3);
        using var model = Load(Variant(plain, dir.File("switched"), field, value));
        var cases = Cases(dir, model.Config.VocabSize);

        OnnxExport.Export(model, new[] { "no", "yes" }, dir.File("onnx"));
        using var scorer = OnnxTextClassifier.Load(dir.File("onnx"));

        LogitsCases.MaxAbsDifference(scorer.Logits(cases.InputIds, cases.AttentionMask, cases.TokenTypeIds), cases.Run(model)).Should().BeLessThan(1e-4);
    }
}
