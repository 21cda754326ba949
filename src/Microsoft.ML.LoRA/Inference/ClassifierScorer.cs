using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tokenization;
using Microsoft.ML.LoRA.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Inference;

/// <summary>
/// Runs a classifier over many texts: tokenizes, sorts by length so each batch carries little padding, runs batches
/// in eval mode without gradients, and returns logits in the caller's order. Tensors are disposed batch by batch, so
/// memory stays flat however many texts pass through. A NaN or infinite logit is an error
/// (<see cref="NonFiniteScoreException"/>, naming the first such input in the caller's order), never a score. Safe to
/// call from several threads at once.
/// </summary>
public sealed class ClassifierScorer
{
    readonly SequenceClassifier _model;
    readonly ITextEncoder _encoder;
    readonly int _batchSize;

    public ClassifierScorer(SequenceClassifier model, ITextEncoder encoder, int batchSize)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize));
        _model = model;
        _encoder = encoder;
        _batchSize = batchSize;
    }

    /// <summary>Logits [texts][classes] for texts (and optional second texts of pairs).</summary>
    public float[][] Logits(IReadOnlyList<string?> texts, IReadOnlyList<string?>? pairs = null)
    {
        if (pairs is not null && pairs.Count != texts.Count) throw new ArgumentException("texts and pairs differ in length");
        var encoded = new EncodedText[texts.Count];
        for (int i = 0; i < encoded.Length; i++) encoded[i] = _encoder.Encode(texts[i], pairs?[i]);
        return Logits(encoded);
    }

    /// <summary>Logits [examples][classes] for already encoded examples.</summary>
    public float[][] Logits(IReadOnlyList<EncodedText> encoded)
    {
        var result = new float[encoded.Count][];
        if (encoded.Count == 0) return result;
        // Batches run longest first, so the first non-finite row in the caller's order may come in a later batch: all
        // are scored before the error names the first.
        int firstBad = -1;
        float badValue = 0;
        _model.eval();
        using var _ = torch.no_grad();
        foreach (var batch in BatchPlanner.InferenceBatches(encoded.Select(e => e.Length).ToArray(), _batchSize))
        {
            using var scope = torch.NewDisposeScope();
            var input = BatchCollator.Collate(batch.Select(i => encoded[i]).ToList(), _encoder.PadTokenId, _model.UsesTokenTypes);
            var logits = _model.forward(input).to_type(ScalarType.Float32).contiguous();
            var flat = logits.data<float>().ToArray();
            int width = (int)logits.shape[1];
            for (int r = 0; r < batch.Length; r++)
            {
                var row = flat.AsSpan(r * width, width);
                foreach (var value in row)
                    if (!float.IsFinite(value) && (firstBad < 0 || batch[r] < firstBad))
                    {
                        (firstBad, badValue) = (batch[r], value);
                        break;
                    }
                result[batch[r]] = row.ToArray();
            }
        }
        if (firstBad >= 0) throw new NonFiniteScoreException(firstBad, badValue);
        return result;
    }
}
