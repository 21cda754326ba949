using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tokenization;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Adaptation;

/// <summary>
/// One batch of language-model training: the padded input, and the positions whose tokens are predicted (flat indices
/// into [batch × seq]) with their targets. Masked LM predicts the chosen positions' original tokens; causal LM predicts
/// every real token but the first from the tokens before it. Padding is never a position or a target.
/// </summary>
internal sealed record LanguageModelBatch(ModelInput Input, Tensor Positions, Tensor Targets, int Count)
{
    /// <summary>
    /// A masked-LM batch of <paramref name="examples"/> as <paramref name="masked"/> masks them (one each, in order),
    /// padded. The tensors belong to the caller's dispose scope.
    /// </summary>
    public static LanguageModelBatch Masked(IReadOnlyList<EncodedText> examples, IReadOnlyList<MaskedExample> masked, int padTokenId, bool tokenTypes)
    {
        if (masked.Count != examples.Count) throw new ArgumentException("one masking per example is needed", nameof(masked));
        var inputs = examples.Select((e, i) => new EncodedText(masked[i].InputIds, e.TokenTypeIds)).ToList();
        var input = BatchCollator.Collate(inputs, padTokenId, tokenTypes);
        long width = input.InputIds.shape[1];
        var positions = new List<long>();
        var targets = new List<long>();
        for (int i = 0; i < masked.Count; i++)
        {
            var labels = masked[i].Labels;
            for (int j = 0; j < labels.Length; j++)
            {
                if (labels[j] == MaskedTokenSelection.NotChosen) continue;
                positions.Add(i * width + j);
                targets.Add(labels[j]);
            }
        }
        return new LanguageModelBatch(input, tensor(positions.ToArray()), tensor(targets.ToArray()), positions.Count);
    }

    /// <summary>A causal-LM batch: position j of each example predicts its token j + 1. The tensors belong to the caller's dispose scope.</summary>
    public static LanguageModelBatch Causal(IReadOnlyList<EncodedText> examples, int padTokenId, bool tokenTypes)
    {
        var input = BatchCollator.Collate(examples, padTokenId, tokenTypes);
        long width = input.InputIds.shape[1];
        var positions = new List<long>();
        var targets = new List<long>();
        for (int i = 0; i < examples.Count; i++)
        {
            var ids = examples[i].InputIds;
            for (int j = 0; j + 1 < ids.Length; j++)
            {
                positions.Add(i * width + j);
                targets.Add(ids[j + 1]);
            }
        }
        return new LanguageModelBatch(input, tensor(positions.ToArray()), tensor(targets.ToArray()), positions.Count);
    }
}
