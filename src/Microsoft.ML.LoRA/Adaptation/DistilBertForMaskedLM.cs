using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Models.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.LoRA.Adaptation;

// DistilBERT with its masked-LM head, as Hugging Face's DistilBertForMaskedLM: distilbert.*, vocab_transform,
// the config's activation (gelu), vocab_layer_norm (eps 1e-12), and vocab_projector, whose weight is
// distilbert.embeddings.word_embeddings.weight and whose bias is its own.

/// <summary>The vocabulary projection with a tied weight and its own bias (HF: vocab_projector).</summary>
internal sealed class TiedVocabularyProjection : nn.Module<Tensor, Tensor>
{
    readonly Parameter bias;
    readonly Parameter _weight;

    public TiedVocabularyProjection(string name, long vocabSize, Parameter wordEmbeddings) : base(name)
    {
        bias = new Parameter(torch.zeros(vocabSize), requires_grad: true);
        register_parameter("bias", bias);
        _weight = wordEmbeddings;
    }

    public override Tensor forward(Tensor hidden) => F.linear(hidden, _weight, bias);
}

/// <summary>DistilBERT with the masked-language-model head (HF: DistilBertForMaskedLM).</summary>
internal sealed class DistilBertForMaskedLM : LanguageModel
{
    static readonly Dictionary<string, string[]> Head = new()
    {
        ["vocab_transform.weight"] = [],
        ["vocab_transform.bias"] = [],
        ["vocab_layer_norm.weight"] = [],
        ["vocab_layer_norm.bias"] = [],
        ["vocab_projector.bias"] = [],
    };

    readonly DistilBertModel distilbert;
    readonly LoraLinear vocab_transform;
    readonly LayerNorm vocab_layer_norm;
    readonly TiedVocabularyProjection vocab_projector;

    public DistilBertForMaskedLM(TransformerConfig config) : base("DistilBertForMaskedLM", config)
    {
        distilbert = new DistilBertModel(config);
        vocab_transform = new LoraLinear(config.HiddenSize, config.HiddenSize);
        vocab_layer_norm = nn.LayerNorm(config.HiddenSize, 1e-12);
        register_module("distilbert", distilbert);
        register_module("vocab_transform", vocab_transform);
        register_module("vocab_layer_norm", vocab_layer_norm);
        vocab_projector = new TiedVocabularyProjection("vocab_projector", config.VocabSize, ParameterOf(distilbert, "embeddings.word_embeddings.weight"));
        register_module("vocab_projector", vocab_projector);
    }

    public override LanguageModelObjective Objective => LanguageModelObjective.MaskedLanguageModel;
    public override string Architecture => "DistilBertForMaskedLM";
    public override IReadOnlyDictionary<string, string[]> HeadParameters => Head;
    public override Tensor HiddenStates(ModelInput input) => distilbert.forward(input);

    public override Tensor Logits(Tensor hidden)
    {
        using var projected = vocab_transform.forward(hidden);
        using var activated = Activations.Apply(Config.Activation, projected);
        using var normed = vocab_layer_norm.forward(activated);
        return vocab_projector.forward(normed);
    }
}
