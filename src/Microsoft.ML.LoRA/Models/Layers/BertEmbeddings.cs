using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Dropout = Microsoft.ML.LoRA.Models.Kernels.Dropout;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// Word + position (+ token-type, where the config has token types) embeddings, then LayerNorm and dropout, under
/// Hugging Face's names (embeddings.{word_embeddings, position_embeddings, token_type_embeddings, LayerNorm}): BERT's,
/// which RoBERTa (positions counted after the padding index) and DistilBERT (no token types) share.
/// </summary>
public sealed class BertEmbeddings : nn.Module<ModelInput, Tensor>
{
    readonly Embedding word_embeddings, position_embeddings;
    readonly Embedding? token_type_embeddings;
    readonly LayerNorm LayerNorm;
    readonly double _dropout;
    readonly long? _paddingIdxForPositions;

    /// <param name="config">Model configuration.</param>
    /// <param name="paddingIdxForPositions">RoBERTa: positions count real tokens from padding_idx + 1.</param>
    public BertEmbeddings(TransformerConfig config, long? paddingIdxForPositions = null) : base("embeddings")
    {
        word_embeddings = Embeddings.Normal(config.VocabSize, config.HiddenSize);
        position_embeddings = Embeddings.Normal(config.MaxPositions, config.HiddenSize);
        register_module("word_embeddings", word_embeddings);
        register_module("position_embeddings", position_embeddings);
        if (config.TypeVocabSize > 0)
        {
            token_type_embeddings = Embeddings.Normal(config.TypeVocabSize, config.HiddenSize);
            register_module("token_type_embeddings", token_type_embeddings);
        }
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        register_module("LayerNorm", LayerNorm);
        _dropout = config.EmbeddingDropout;
        _paddingIdxForPositions = paddingIdxForPositions;
    }

    public override Tensor forward(ModelInput input)
    {
        var ids = input.InputIds;
        long seq = ids.shape[1];
        Tensor positions;
        if (_paddingIdxForPositions is long pad)
        {
            using Scalar padScalar = pad;
            using var notPad = ids.ne(padScalar).to_type(ScalarType.Int64);
            using var counted = notPad.cumsum(1);
            positions = counted.mul(notPad).add_(padScalar);
        }
        else
        {
            positions = PositionIds.Row(seq, ids.device);
        }
        using (positions)
        {
            var x = word_embeddings.forward(ids);
            using (var p = position_embeddings.forward(positions)) x.add_(p, Scalars.One);
            if (token_type_embeddings is not null)
            {
                using var zeros = input.TokenTypeIds is null ? torch.zeros_like(ids) : null;
                using var t = token_type_embeddings.forward(input.TokenTypeIds ?? zeros!);
                x.add_(t, Scalars.One);
            }
            using (x)
            {
                using var normed = LayerNorm.forward(x);
                return Dropout.Apply(normed, _dropout, training);
            }
        }
    }
}
