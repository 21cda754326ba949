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
    /// <summary>
    /// A small random checkpoint of any family in <paramref name="folder"/>: BERT and DistilBERT with the real
    /// bert-base-uncased vocabulary, RoBERTa and GPT-2 with a byte-level BPE vocabulary (256 byte symbols + a few merges),
    /// LLaMA with a toy Llama-2 tokenizer.json (no pad token: it pads with end-of-sequence), DeBERTa-v3 with a toy Unigram one.
    /// </summary>
    public static string Create(string family, string folder, int hidden = 32, int layers = 2, int heads = 4, int seed = 0)
    {
        if (family == "bert") return Bert(folder, hidden, layers, heads, seed);
        Directory.CreateDirectory(folder);
        JsonObject config;
        switch (family)
        {
            case "distilbert":
                config = new JsonObject
                {
                    ["model_type"] = "distilbert", ["dim"] = hidden, ["n_layers"] = layers, ["n_heads"] = heads, ["hidden_dim"] = hidden * 2,
                    ["max_position_embeddings"] = 128, ["vocab_size"] = 30522, ["activation"] = "gelu", ["pad_token_id"] = 0,
                };
                CopyBertTokenizer(folder);
                break;
            case "roberta":
                var roberta = Microsoft.ML.LoRA.Tests.Tokenization.ToyByteLevelBpe.Roberta();
                roberta.WriteVocabFiles(folder);
                config = new JsonObject
                {
                    ["model_type"] = "roberta", ["hidden_size"] = hidden, ["num_hidden_layers"] = layers, ["num_attention_heads"] = heads,
                    ["intermediate_size"] = hidden * 2, ["hidden_act"] = "gelu", ["max_position_embeddings"] = 130, ["type_vocab_size"] = 1,
                    ["vocab_size"] = roberta.Vocab.Count, ["layer_norm_eps"] = 1e-5, ["pad_token_id"] = 1, ["bos_token_id"] = 0, ["eos_token_id"] = 2,
                };
                break;
            case "gpt2":
                var gpt2 = Microsoft.ML.LoRA.Tests.Tokenization.ToyByteLevelBpe.Gpt2();
                gpt2.WriteVocabFiles(folder);
                config = new JsonObject
                {
                    ["model_type"] = "gpt2", ["n_embd"] = hidden, ["n_layer"] = layers, ["n_head"] = heads, ["n_positions"] = 128,
                    ["vocab_size"] = gpt2.Vocab.Count, ["activation_function"] = "gelu_new", ["layer_norm_epsilon"] = 1e-5,
                    ["eos_token_id"] = gpt2.Id("<|endoftext|>"), ["bos_token_id"] = gpt2.Id("<|endoftext|>"),
                };
                break;
            case "llama":
                Microsoft.ML.LoRA.Tests.Tokenization.ToyLlamaTokenizer.WriteTokenizerJson(folder);
                Microsoft.ML.LoRA.Tests.Tokenization.ToyLlamaTokenizer.WriteTokenizerConfig(folder);
                config = LlamaFixtures.TinyConfig("llama",
                    ("hidden_size", hidden), ("num_hidden_layers", layers), ("num_attention_heads", heads), ("num_key_value_heads", heads / 2),
                    ("intermediate_size", hidden * 2), ("vocab_size", Microsoft.ML.LoRA.Tests.Tokenization.ToyLlamaTokenizer.Vocab.Count),
                    ("bos_token_id", 1), ("eos_token_id", 2));
                config.Remove("pad_token_id");   // as Llama-2's config.json: the end-of-sequence token pads
                break;
            case "deberta-v2":
                Microsoft.ML.LoRA.Tests.Tokenization.ToyDebertaTokenizer.WriteTokenizerJson(folder);
                config = new JsonObject
                {
                    ["model_type"] = "deberta-v2", ["hidden_size"] = hidden, ["num_hidden_layers"] = layers, ["num_attention_heads"] = heads,
                    ["intermediate_size"] = hidden * 2, ["hidden_act"] = "gelu", ["max_position_embeddings"] = 128, ["type_vocab_size"] = 0,
                    ["vocab_size"] = Microsoft.ML.LoRA.Tests.Tokenization.ToyDebertaTokenizer.Mask + 1, ["layer_norm_eps"] = 1e-7,
                    ["relative_attention"] = true, ["max_relative_positions"] = -1, ["position_buckets"] = 8,
                    ["pos_att_type"] = new JsonArray("p2c", "c2p"), ["share_att_key"] = true, ["norm_rel_ebd"] = "layer_norm",
                    ["position_biased_input"] = false, ["pad_token_id"] = 0,
                };
                break;
            default: throw new ArgumentOutOfRangeException(nameof(family));
        }
        WriteRandomWeights(folder, config, seed);
        return folder;
    }

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
        WriteRandomWeights(folder, config, seed);
        CopyBertTokenizer(folder);
        return folder;
    }

    /// <summary>
    /// A random-weight copy of the checkpoint in <paramref name="pretrained"/>: the same config.json and tokenizer files,
    /// weights drawn as a fresh model's (without the classification head).
    /// </summary>
    public static string RandomLike(string pretrained, string folder, int seed = 0)
    {
        Directory.CreateDirectory(folder);
        foreach (var file in Directory.GetFiles(pretrained).Where(f => !f.EndsWith(".safetensors", StringComparison.Ordinal) && !f.EndsWith(".bin", StringComparison.Ordinal)))
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        WriteRandomWeights(folder, (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(pretrained, "config.json")))!, seed);
        return folder;
    }

    /// <summary>config.json and a model.safetensors of random weights without the classification head.</summary>
    static void WriteRandomWeights(string folder, JsonObject config, int seed)
    {
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString());
        lock (Microsoft.ML.LoRA.TorchRandomLock.Sync)   // seeding must not disturb a concurrent reproducible run
        {
            torch.manual_seed(seed);
            using var model = ModelFactory.Create(TransformerConfig.Parse(config), 2);
            var head = model.Layout.HeadModules;
            var tensors = model.named_parameters()
                .Where(p => !head.Any(h => p.name.StartsWith(h + ".", StringComparison.Ordinal)))
                .ToDictionary(p => p.name, p => (torch.Tensor)p.parameter);
            SafeTensorsWriter.Save(Path.Combine(folder, "model.safetensors"), tensors);
        }
    }

    static void CopyBertTokenizer(string folder)
    {
        foreach (var file in new[] { "vocab.txt", "tokenizer_config.json", "special_tokens_map.json" })
            File.Copy(Path.Combine(SharedData.BertTokenizer, file), Path.Combine(folder, file));
    }
}
