using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models.Kernels;
using TorchSharp;
using static TorchSharp.torch;
using Dropout = Microsoft.ML.LoRA.Models.Kernels.Dropout;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// A transformer with a sequence-classification head: token ids in, one row of logits per example out.
/// Subclasses keep Hugging Face's module names, so <c>named_parameters()</c> lists the same names a Hugging Face
/// checkpoint holds (<c>bert.encoder.layer.0.attention.self.query.weight</c>, ...).
/// </summary>
public abstract class SequenceClassifier : nn.Module<ModelInput, Tensor>
{
    protected SequenceClassifier(string name, TransformerConfig config, int numLabels) : base(name)
    {
        if (numLabels < 1) throw new ArgumentOutOfRangeException(nameof(numLabels), "a classifier needs at least one label");
        Config = config;
        NumLabels = numLabels;
    }

    /// <summary>The configuration the model was built from.</summary>
    public TransformerConfig Config { get; }

    /// <summary>Number of output classes.</summary>
    public int NumLabels { get; }

    /// <summary>Where the family keeps its head, its base model and the modules each LoRA switch means.</summary>
    public FamilyLayout Layout => ModelFamilies.Of(Config).Layout;

    /// <summary>
    /// Modules the base checkpoint did not hold, created with fresh weights when it was loaded: a missing head, or the
    /// pooler a masked-LM checkpoint lacks (set by <see cref="WeightLoader"/>). They train with the head by default and
    /// are always saved with the fitted model, trained or not, so a saved model never depends on a random draw.
    /// </summary>
    public IReadOnlyList<string> CreatedModules { get; internal set; } = Array.Empty<string>();

    /// <summary>
    /// The parameters a fitted model holds beyond its base checkpoint, by Hugging Face name: adapter factors, every
    /// trainable parameter, and the parameters of <see cref="CreatedModules"/> (trained or not). Saving these and
    /// loading them over the base reproduces the model exactly.
    /// </summary>
    public IEnumerable<(string name, TorchSharp.Modules.Parameter parameter)> ParametersBeyondBase() =>
        named_parameters().Where(p => LoraLinear.IsAdapterParameter(p.name) || p.parameter.requires_grad
            || CreatedModules.Any(m => p.name.StartsWith(m + ".", StringComparison.Ordinal)));

    /// <summary>Marks exactly the named parameters trainable (as after fitting); used when a saved model is loaded.</summary>
    public void MarkTrainable(IReadOnlySet<string> names)
    {
        foreach (var (name, p) in named_parameters()) p.requires_grad = names.Contains(name);
    }

    /// <summary>
    /// Creates the linear layer from the hidden state to the labels and registers it as <paramref name="name"/>
    /// (Hugging Face's <c>classifier</c> or <c>score</c>). Called after the modules before it are created and
    /// registered, so it draws its initial weights and lists its parameters last, where Hugging Face's classes do.
    /// </summary>
    private protected LoraLinear AddLabelLayer(string name, bool hasBias = true)
    {
        var layer = new LoraLinear(Config.HiddenSize, NumLabels, hasBias: hasBias);
        register_module(name, layer);
        return layer;
    }

    /// <summary>An encoder head's last step: dropout at the config's classifier dropout, then <paramref name="classifier"/>.</summary>
    private protected Tensor Classify(LoraLinear classifier, Tensor features)
    {
        using var dropped = Dropout.Apply(features, Config.ClassifierDropout, training);
        return classifier.forward(dropped);
    }

    /// <summary>A decoder head: <paramref name="score"/> over the hidden state of each example's last real token.</summary>
    private protected static Tensor ScoreLastRealToken(TransformerModel model, LoraLinear score, ModelInput input)
    {
        using var state = model.LastRealTokenState(input);
        using var last = state.squeeze(1);
        return score.forward(last);
    }

    /// <summary>True when the model reads token type ids (BERT's segment embeddings).</summary>
    public bool UsesTokenTypes => Config.TakesTokenTypes;

    /// <summary>Re-initialises the named module's parameters as Hugging Face initialises a new head.</summary>
    public void ResetModule(string moduleName)
    {
        using var _ = torch.no_grad();
        lock (TorchRandomLock.Sync)
        foreach (var (name, p) in named_parameters())
        {
            if (!name.StartsWith(moduleName + ".", StringComparison.Ordinal)) continue;
            if (name.EndsWith(".bias", StringComparison.Ordinal)) p.zero_();
            else p.normal_(0, 0.02);
        }
    }
}
