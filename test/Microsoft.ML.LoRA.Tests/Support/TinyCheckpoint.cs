using System.Text.Json.Nodes;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models;
using TorchSharp;

namespace Microsoft.ML.LoRA.Tests.Support;

/// <summary>
/// Writes small random-weight Hugging Face checkpoints for tests (no pretrained weights exist on these machines):
/// config.json + model.safetensors without a classification head, plus the real bert-base-uncased tokenizer files.
/// </summary>
public static class TinyCheckpoint
{
    /// <summary>A 2-layer BERT with the bert-base-uncased vocabulary in <paramref name="folder"/>.</summary>
    public static string Bert(string folder, int hidden = 32, int layers = 2, int heads = 4, int seed = 0)
    {
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("BertForMaskedLM"),
            ["model_type"] = "bert",
            ["hidden_size"] = hidden,
            ["num_hidden_layers"] = layers,
            ["num_attention_heads"] = heads,
            ["intermediate_size"] = hidden * 2,
            ["hidden_act"] = "gelu",
            ["max_position_embeddings"] = 128,
            ["type_vocab_size"] = 2,
            ["vocab_size"] = 30522,
            ["layer_norm_eps"] = 1e-12,
            ["pad_token_id"] = 0,
        };
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString());
        lock (Microsoft.ML.LoRA.Training.TorchRandomLock.Sync)   // seeding must not disturb a concurrent reproducible run
        {
            torch.manual_seed(seed);
            using var model = ModelFactory.Create(TransformerConfig.Parse(config), 2);
            var tensors = model.named_parameters().Where(p => !p.name.StartsWith("classifier.")).ToDictionary(p => p.name, p => (torch.Tensor)p.parameter);
            SafeTensorsWriter.Save(Path.Combine(folder, "model.safetensors"), tensors);
        }
        foreach (var file in new[] { "vocab.txt", "tokenizer_config.json", "special_tokens_map.json" })
            File.Copy(Path.Combine(SharedData.BertTokenizer, file), Path.Combine(folder, file));
        return folder;
    }
}
