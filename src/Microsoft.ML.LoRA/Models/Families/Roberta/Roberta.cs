using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models;

// RoBERTa for sequence classification, as Hugging Face's RobertaForSequenceClassification: the BERT encoder under the
// "roberta." prefix (no pooler), positions counted from padding_idx + 1 over non-padding tokens, and a head
// classifier.{dense, out_proj} over the <s> token.

/// <summary>dropout, dense, tanh, dropout, out_proj over the first token (HF: RobertaClassificationHead).</summary>
public sealed class RobertaClassificationHead : nn.Module<Tensor, Tensor>
{
    readonly LoraLinear dense, out_proj;
    readonly double _dropout;

    public RobertaClassificationHead(TransformerConfig config, int numLabels) : base("classifier")
    {
        dense = new LoraLinear(config.HiddenSize, config.HiddenSize);
        out_proj = new LoraLinear(config.HiddenSize, numLabels);
        register_module("dense", dense);
        register_module("out_proj", out_proj);
        _dropout = config.ClassifierDropout;
    }

    /// <param name="hidden">[batch, seq or 1, hidden]; the first row is read.</param>
    public override Tensor forward(Tensor hidden)
    {
        using var first = hidden.select(1, 0);
        using var d1 = Dropout.Apply(first, _dropout, training);
        using var projected = dense.forward(d1);
        using var activated = projected.tanh();
        using var d2 = Dropout.Apply(activated, _dropout, training);
        return out_proj.forward(d2);
    }
}

/// <summary>RoBERTa encoder with the two-layer classification head.</summary>
public sealed class RobertaForSequenceClassification : SequenceClassifier
{
    readonly BertModel roberta;
    readonly RobertaClassificationHead classifier;

    public RobertaForSequenceClassification(TransformerConfig config, int numLabels) : base("RobertaForSequenceClassification", config, numLabels)
    {
        roberta = new BertModel(config, addPooler: false, paddingIdxForPositions: config.PadTokenId ?? 1);
        classifier = new RobertaClassificationHead(config, numLabels);
        register_module("roberta", roberta);
        register_module("classifier", classifier);
    }

    public override Tensor forward(ModelInput input)
    {
        using var first = roberta.FirstTokenState(input);
        return classifier.forward(first);
    }
}
