using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.LoRA.Adaptation;

/// <summary>
/// A family's base model with its language-model head, module for module as Hugging Face's
/// <c>BertForMaskedLM</c>, <c>DistilBertForMaskedLM</c>, <c>RobertaForMaskedLM</c> and <c>GPT2LMHeadModel</c>, so
/// <c>named_parameters()</c> lists the names those checkpoints hold. The base is the classifier's own base module
/// (<see cref="BertModel"/>, <see cref="DistilBertModel"/>, <see cref="Gpt2Model"/>) under the same prefix, so adapter
/// and weight names carry over to a classifier unchanged. The output projection onto the vocabulary is tied to the
/// word embeddings, as in Hugging Face: it is not a parameter of its own and is never written.
/// </summary>
internal abstract class LanguageModel : nn.Module<ModelInput, Tensor>
{
    protected LanguageModel(string name, TransformerConfig config) : base(name)
    {
        Config = config;
    }

    /// <summary>The configuration the model was built from.</summary>
    public TransformerConfig Config { get; }

    /// <summary>Where the family keeps its base model and what each LoRA switch means.</summary>
    public FamilyLayout Layout => ModelFamilies.Of(Config).Layout;

    /// <summary>Masked or causal language modelling.</summary>
    public abstract LanguageModelObjective Objective { get; }

    /// <summary>The Hugging Face class name written to config.json's <c>architectures</c>.</summary>
    public abstract string Architecture { get; }

    /// <summary>True when the model reads token type ids (BERT).</summary>
    public bool UsesTokenTypes => Config.TakesTokenTypes;

    /// <summary>
    /// The head's own parameters (not the tied projection), each with the other names a checkpoint may store it under
    /// (BERT's and RoBERTa's decoder bias is the head's bias under a second name).
    /// </summary>
    public abstract IReadOnlyDictionary<string, string[]> HeadParameters { get; }

    /// <summary>The last hidden states [batch, seq, hidden] of the base model.</summary>
    public abstract Tensor HiddenStates(ModelInput input);

    /// <summary>Vocabulary logits [..., vocab] for hidden states [..., hidden].</summary>
    public abstract Tensor Logits(Tensor hidden);

    /// <summary>Vocabulary logits [batch, seq, vocab] at every position.</summary>
    public override Tensor forward(ModelInput input)
    {
        using var hidden = HiddenStates(input);
        return Logits(hidden);
    }

    /// <summary>
    /// Mean cross-entropy of the predictions at <paramref name="positions"/> (flat indices into [batch × seq]) against
    /// <paramref name="targets"/>; the head runs on those rows only, so a batch never holds logits for every position.
    /// With <paramref name="sum"/> the summed loss instead of the mean.
    /// </summary>
    public Tensor Loss(ModelInput input, Tensor positions, Tensor targets, bool sum = false)
    {
        using var hidden = HiddenStates(input);
        using var flat = hidden.reshape(-1, hidden.shape[2]);
        using var rows = flat.index_select(0, positions);
        using var logits = Logits(rows);
        return F.cross_entropy(logits, targets, reduction: sum ? nn.Reduction.Sum : nn.Reduction.Mean);
    }

    /// <summary>Initialises the head as Hugging Face initialises new weights: linear weights ~ N(0, 0.02), biases 0, LayerNorm 1 and 0.</summary>
    public void ResetHead()
    {
        using var _ = torch.no_grad();
        lock (TorchRandomLock.Sync)
        {
            var norms = named_modules().Where(m => m.module is LayerNorm).Select(m => m.name + ".").ToList();
            foreach (var (name, p) in named_parameters())
            {
                if (!HeadParameters.ContainsKey(name)) continue;
                bool norm = norms.Any(n => name.StartsWith(n, StringComparison.Ordinal));
                if (name.EndsWith(".weight", StringComparison.Ordinal)) { if (norm) p.fill_(Scalars.One); else p.normal_(0, 0.02); }
                else p.zero_();
            }
        }
    }

    /// <summary>The parameter <paramref name="name"/> of <paramref name="module"/> (to tie the output projection to it).</summary>
    protected static Parameter ParameterOf(nn.Module module, string name) =>
        module.named_parameters().FirstOrDefault(p => p.name == name).parameter
        ?? throw new InvalidOperationException($"the base model has no parameter '{name}'");

    /// <summary>The output projection tied to the word embeddings: hidden · Eᵀ (+ bias).</summary>
    protected static Tensor Project(Tensor hidden, Parameter embeddings, Tensor? bias) => F.linear(hidden, embeddings, bias);
}
