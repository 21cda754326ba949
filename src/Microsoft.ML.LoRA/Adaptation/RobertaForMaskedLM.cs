using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.LoRA.Adaptation;

// RoBERTa with its masked-LM head, as Hugging Face's RobertaForMaskedLM: roberta.* (no pooler),
// lm_head.{dense, layer_norm} with gelu between them whatever the config's hidden_act (RobertaLMHead calls gelu),
// layer_norm eps from layer_norm_eps, lm_head.bias, and lm_head.decoder, whose weight is
// roberta.embeddings.word_embeddings.weight and whose bias is lm_head.bias.

/// <summary>dense, gelu, layer_norm, then the tied decoder with the head's bias (HF: RobertaLMHead).</summary>
internal sealed class RobertaLmHead : nn.Module<Tensor, Tensor>
{
    readonly LoraLinear dense;
    readonly LayerNorm layer_norm;
    readonly Parameter bias;
    readonly Parameter _decoderWeight;

    public RobertaLmHead(TransformerConfig config, Parameter wordEmbeddings) : base("lm_head")
    {
        dense = new LoraLinear(config.HiddenSize, config.HiddenSize);
        layer_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        bias = new Parameter(torch.zeros(config.VocabSize), requires_grad: true);
        register_module("dense", dense);
        register_module("layer_norm", layer_norm);
        register_parameter("bias", bias);
        _decoderWeight = wordEmbeddings;
    }

    public override Tensor forward(Tensor hidden)
    {
        using var projected = dense.forward(hidden);
        using var activated = F.gelu(projected);
        using var normed = layer_norm.forward(activated);
        return F.linear(normed, _decoderWeight, bias);
    }
}

/// <summary>RoBERTa with the masked-language-model head (HF: RobertaForMaskedLM).</summary>
internal sealed class RobertaForMaskedLM : LanguageModel
{
    static readonly Dictionary<string, string[]> Head = new()
    {
        ["lm_head.dense.weight"] = [],
        ["lm_head.dense.bias"] = [],
        ["lm_head.layer_norm.weight"] = [],
        ["lm_head.layer_norm.bias"] = [],
        ["lm_head.bias"] = ["lm_head.decoder.bias"],
    };

    readonly BertModel roberta;
    readonly RobertaLmHead lm_head;

    public RobertaForMaskedLM(TransformerConfig config) : base("RobertaForMaskedLM", config)
    {
        roberta = new BertModel(config, addPooler: false, paddingIdxForPositions: config.PadTokenId ?? 1);
        register_module("roberta", roberta);
        lm_head = new RobertaLmHead(config, ParameterOf(roberta, "embeddings.word_embeddings.weight"));
        register_module("lm_head", lm_head);
    }

    public override LanguageModelObjective Objective => LanguageModelObjective.MaskedLanguageModel;
    public override string Architecture => "RobertaForMaskedLM";
    public override IReadOnlyDictionary<string, string[]> HeadParameters => Head;
    public override Tensor HiddenStates(ModelInput input) => roberta.forward(input);
    public override Tensor Logits(Tensor hidden) => lm_head.forward(hidden);
}
