using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Adaptation;

/// <summary>
/// GPT-2 with its language-model head (HF: GPT2LMHeadModel): transformer.*, then lm_head, a bias-free projection whose
/// weight is transformer.wte.weight. The head has no parameters of its own.
/// </summary>
internal sealed class Gpt2LMHeadModel : LanguageModel
{
    readonly Gpt2Model transformer;
    readonly Parameter _tokenEmbeddings;

    public Gpt2LMHeadModel(TransformerConfig config) : base("GPT2LMHeadModel", config)
    {
        transformer = new Gpt2Model(config);
        register_module("transformer", transformer);
        _tokenEmbeddings = ParameterOf(transformer, "wte.weight");
    }

    public override LanguageModelObjective Objective => LanguageModelObjective.CausalLanguageModel;
    public override string Architecture => "GPT2LMHeadModel";
    public override IReadOnlyDictionary<string, string[]> HeadParameters { get; } = new Dictionary<string, string[]>();
    public override Tensor HiddenStates(ModelInput input) => transformer.forward(input);
    public override Tensor Logits(Tensor hidden) => Project(hidden, _tokenEmbeddings, null);
}
