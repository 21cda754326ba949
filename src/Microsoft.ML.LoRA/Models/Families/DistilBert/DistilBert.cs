using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Dropout = Microsoft.ML.LoRA.Models.Kernels.Dropout;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.LoRA.Models;

// DistilBERT for sequence classification, as Hugging Face's DistilBertForSequenceClassification:
// distilbert.embeddings.{word_embeddings, position_embeddings, LayerNorm},
// distilbert.transformer.layer.N.{attention.{q_lin,k_lin,v_lin,out_lin}, sa_layer_norm, ffn.{lin1,lin2}, output_layer_norm},
// then pre_classifier -> ReLU -> dropout -> classifier over the first token.

/// <summary>One post-norm layer: attention + sa_layer_norm, ffn + output_layer_norm.</summary>
public sealed class DistilBertLayer : TransformerLayer
{
    readonly SelfAttention attention;
    readonly LayerNorm sa_layer_norm, output_layer_norm;
    readonly FeedForward ffn;

    public DistilBertLayer(TransformerConfig config) : base("layer", config.IntermediateSize)
    {
        attention = new SelfAttention("attention", config, ("q_lin", "k_lin", "v_lin", "out_lin"));
        sa_layer_norm = nn.LayerNorm(config.HiddenSize, 1e-12);
        ffn = new FeedForward("ffn", config, ("lin1", "lin2"));
        output_layer_norm = nn.LayerNorm(config.HiddenSize, 1e-12);
        register_module("attention", attention);
        register_module("sa_layer_norm", sa_layer_norm);
        register_module("ffn", ffn);
        register_module("output_layer_norm", output_layer_norm);
    }

    protected internal override Tensor Attend(Tensor rows, Tensor x, Tensor? keyMask)
    {
        using var attended = attention.Attend(rows, x, keyMask);
        attended.add_(rows, Scalars.One);
        return sa_layer_norm.forward(attended);
    }

    protected internal override Tensor FeedForward(Tensor h)
    {
        using var ff = ffn.forward(h);
        ff.add_(h, Scalars.One);
        return output_layer_norm.forward(ff);
    }
}

/// <summary>Embeddings and the layer stack (HF: DistilBertModel, the "distilbert." prefix).</summary>
public sealed class DistilBertModel : TransformerModel
{
    readonly BertEmbeddings embeddings;
    readonly EncoderStack<DistilBertLayer> transformer;

    public DistilBertModel(TransformerConfig config) : base("distilbert")
    {
        embeddings = new BertEmbeddings(config);
        transformer = new EncoderStack<DistilBertLayer>("transformer", config.NumLayers, () => new DistilBertLayer(config));
        register_module("embeddings", embeddings);
        register_module("transformer", transformer);
    }

    protected override Tensor Embed(ModelInput input) => embeddings.forward(input);

    private protected override ILayerStack Layers => transformer.Layers;
}

/// <summary>DistilBERT with pre_classifier -> ReLU -> dropout -> classifier over the first token.</summary>
public sealed class DistilBertForSequenceClassification : SequenceClassifier
{
    readonly DistilBertModel distilbert;
    readonly LoraLinear pre_classifier, classifier;

    public DistilBertForSequenceClassification(TransformerConfig config, int numLabels) : base("DistilBertForSequenceClassification", config, numLabels)
    {
        distilbert = new DistilBertModel(config);
        pre_classifier = new LoraLinear(config.HiddenSize, config.HiddenSize);
        register_module("distilbert", distilbert);
        register_module("pre_classifier", pre_classifier);
        classifier = AddLabelLayer("classifier");
    }

    public override Tensor forward(ModelInput input)
    {
        using var state = distilbert.FirstTokenState(input);
        using var first = state.select(1, 0);
        using var projected = pre_classifier.forward(first);
        using var activated = F.relu(projected);
        return Classify(classifier, activated);
    }
}
