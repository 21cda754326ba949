using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Models.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.LoRA.Adaptation;

// BERT with its masked-LM head, as Hugging Face's BertForMaskedLM: bert.* (no pooler, unless the checkpoint has one,
// which is then carried through unchanged), cls.predictions.transform.{dense, LayerNorm} (activation: the config's
// hidden_act; LayerNorm eps: layer_norm_eps), cls.predictions.bias, and cls.predictions.decoder, whose weight is
// bert.embeddings.word_embeddings.weight and whose bias is cls.predictions.bias.

/// <summary>dense, activation, LayerNorm (HF: BertPredictionHeadTransform).</summary>
internal sealed class BertPredictionTransform : nn.Module<Tensor, Tensor>
{
    readonly LoraLinear dense;
    readonly LayerNorm LayerNorm;
    readonly string _activation;

    public BertPredictionTransform(TransformerConfig config) : base("transform")
    {
        dense = new LoraLinear(config.HiddenSize, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        register_module("dense", dense);
        register_module("LayerNorm", LayerNorm);
        _activation = config.Activation;
    }

    public override Tensor forward(Tensor hidden)
    {
        using var projected = dense.forward(hidden);
        using var activated = Activations.Apply(_activation, projected);
        return LayerNorm.forward(activated);
    }
}

/// <summary>The transform, then the tied decoder with the head's own bias (HF: BertLMPredictionHead).</summary>
internal sealed class BertPredictionHead : nn.Module<Tensor, Tensor>
{
    readonly BertPredictionTransform transform;
    readonly Parameter bias;
    readonly Parameter _decoderWeight;

    public BertPredictionHead(TransformerConfig config, Parameter wordEmbeddings) : base("predictions")
    {
        transform = new BertPredictionTransform(config);
        bias = new Parameter(torch.zeros(config.VocabSize), requires_grad: true);
        register_module("transform", transform);
        register_parameter("bias", bias);
        _decoderWeight = wordEmbeddings;
    }

    public override Tensor forward(Tensor hidden)
    {
        using var transformed = transform.forward(hidden);
        return F.linear(transformed, _decoderWeight, bias);
    }
}

/// <summary>The prediction head under "cls" (HF: BertOnlyMLMHead).</summary>
internal sealed class BertOnlyMlmHead : nn.Module<Tensor, Tensor>
{
    readonly BertPredictionHead predictions;

    public BertOnlyMlmHead(TransformerConfig config, Parameter wordEmbeddings) : base("cls")
    {
        predictions = new BertPredictionHead(config, wordEmbeddings);
        register_module("predictions", predictions);
    }

    public override Tensor forward(Tensor hidden) => predictions.forward(hidden);
}

/// <summary>BERT with the masked-language-model head (HF: BertForMaskedLM).</summary>
internal sealed class BertForMaskedLM : LanguageModel
{
    static readonly Dictionary<string, string[]> Head = new()
    {
        ["cls.predictions.transform.dense.weight"] = [],
        ["cls.predictions.transform.dense.bias"] = [],
        ["cls.predictions.transform.LayerNorm.weight"] = ["cls.predictions.transform.LayerNorm.gamma"],
        ["cls.predictions.transform.LayerNorm.bias"] = ["cls.predictions.transform.LayerNorm.beta"],
        ["cls.predictions.bias"] = ["cls.predictions.decoder.bias"],
    };

    readonly BertModel bert;
    readonly BertOnlyMlmHead cls;

    /// <param name="config">The model's configuration.</param>
    /// <param name="addPooler">Keep a pooler (unused by the head) so a checkpoint's pooler is carried through.</param>
    public BertForMaskedLM(TransformerConfig config, bool addPooler) : base("BertForMaskedLM", config)
    {
        bert = new BertModel(config, addPooler);
        register_module("bert", bert);
        cls = new BertOnlyMlmHead(config, ParameterOf(bert, "embeddings.word_embeddings.weight"));
        register_module("cls", cls);
    }

    public override LanguageModelObjective Objective => LanguageModelObjective.MaskedLanguageModel;
    public override string Architecture => "BertForMaskedLM";
    public override IReadOnlyDictionary<string, string[]> HeadParameters => Head;
    public override Tensor HiddenStates(ModelInput input) => bert.forward(input);
    public override Tensor Logits(Tensor hidden) => cls.forward(hidden);
}
