namespace Microsoft.ML.LoRA.Adaptation;

/// <summary>One example after masking: the ids the model reads and, per position, the id to predict or -1.</summary>
/// <param name="InputIds">The ids with the chosen positions replaced (or kept).</param>
/// <param name="Labels">The original id at every chosen position, <see cref="MaskedTokenSelection.NotChosen"/> elsewhere.</param>
public sealed record MaskedExample(int[] InputIds, int[] Labels);

/// <summary>
/// Hugging Face's masking rule for masked-language-model training (<c>DataCollatorForLanguageModeling</c>): each
/// token is chosen with probability <see cref="Probability"/> (15% by default), except special tokens ([CLS], [SEP],
/// [PAD], [MASK], [UNK] and their RoBERTa counterparts), which are never chosen; padding is added later and never
/// chosen either. Of the chosen tokens 80% become the mask token, 10% a token drawn uniformly from the vocabulary,
/// and 10% stay unchanged; the loss is computed at the chosen positions only. Masks are drawn afresh each time an
/// example is masked, so every epoch sees new ones (dynamic masking).
/// </summary>
public sealed class MaskedTokenSelection
{
    /// <summary>The label of a position that is not predicted (Hugging Face uses -100).</summary>
    public const int NotChosen = -100;

    readonly HashSet<int> _special;

    /// <param name="probability">Share of (non-special) tokens chosen, in (0, 1).</param>
    /// <param name="maskTokenId">The mask token's id.</param>
    /// <param name="vocabSize">Random replacements are drawn from [0, vocabSize).</param>
    /// <param name="specialTokenIds">Ids that are never chosen.</param>
    public MaskedTokenSelection(double probability, int maskTokenId, int vocabSize, IEnumerable<int> specialTokenIds)
    {
        if (!(probability > 0 && probability < 1)) throw new ArgumentOutOfRangeException(nameof(probability), probability, "the mask probability must be in (0, 1)");
        if (vocabSize < 1) throw new ArgumentOutOfRangeException(nameof(vocabSize));
        if (maskTokenId < 0 || maskTokenId >= vocabSize) throw new ArgumentOutOfRangeException(nameof(maskTokenId), maskTokenId, $"the mask token id is outside the vocabulary of {vocabSize}");
        Probability = probability;
        MaskTokenId = maskTokenId;
        VocabSize = vocabSize;
        _special = new HashSet<int>(specialTokenIds);
    }

    /// <summary>Share of tokens chosen for prediction.</summary>
    public double Probability { get; }

    /// <summary>The id chosen tokens are mostly replaced with.</summary>
    public int MaskTokenId { get; }

    /// <summary>Size of the vocabulary random replacements come from.</summary>
    public int VocabSize { get; }

    /// <summary>True for ids that are never chosen.</summary>
    public bool IsSpecial(int id) => _special.Contains(id);

    /// <summary>Masks one example with draws from <paramref name="random"/> (the same generator state gives the same masks).</summary>
    public MaskedExample Apply(IReadOnlyList<int> ids, Random random)
    {
        var inputs = new int[ids.Count];
        var labels = new int[ids.Count];
        for (int i = 0; i < ids.Count; i++)
        {
            int id = ids[i];
            inputs[i] = id;
            labels[i] = NotChosen;
            if (_special.Contains(id) || random.NextDouble() >= Probability) continue;
            labels[i] = id;
            double action = random.NextDouble();
            if (action < 0.8) inputs[i] = MaskTokenId;
            else if (action < 0.9) inputs[i] = random.Next(VocabSize);
        }
        return new MaskedExample(inputs, labels);
    }
}
