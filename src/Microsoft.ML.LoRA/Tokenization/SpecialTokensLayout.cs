namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// Where a family's special tokens go around one text (prefix A suffix) or a pair (prefix A middle B suffix), with the
/// token type id of every position. Truncation happens before they are added, so they always survive.
/// </summary>
internal sealed class SpecialTokensLayout
{
    public required int[] SinglePrefix { get; init; }
    public required int[] SingleSuffix { get; init; }
    public required int[] PairPrefix { get; init; }
    public required int[] PairMiddle { get; init; }
    public required int[] PairSuffix { get; init; }

    /// <summary>Token type of the second text and of the pair suffix; the prefix and first text are type 0.</summary>
    public int SecondSegmentTypeId { get; init; }

    /// <summary>
    /// Token type of each <see cref="PairMiddle"/> token; null: all 0. Llama's template puts the second text's
    /// &lt;s&gt; in the middle with the second text's type (<c>&lt;s&gt;:0 $A:0 &lt;s&gt;:1 $B:1</c>).
    /// </summary>
    public int[]? PairMiddleTypeIds { get; init; }

    /// <summary>Special tokens added to a single text.</summary>
    public int SingleCount => SinglePrefix.Length + SingleSuffix.Length;

    /// <summary>Special tokens added to a pair.</summary>
    public int PairCount => PairPrefix.Length + PairMiddle.Length + PairSuffix.Length;

    /// <summary>Every special token id the layout uses.</summary>
    public IEnumerable<int> Ids => SinglePrefix.Concat(SingleSuffix).Concat(PairPrefix).Concat(PairMiddle).Concat(PairSuffix);

    /// <summary>BERT: [CLS] A [SEP] and [CLS] A [SEP] B [SEP]; the second text and its [SEP] are type 1.</summary>
    public static SpecialTokensLayout Bert(int cls, int sep) => new()
    {
        SinglePrefix = [cls], SingleSuffix = [sep],
        PairPrefix = [cls], PairMiddle = [sep], PairSuffix = [sep],
        SecondSegmentTypeId = 1,
    };

    /// <summary>RoBERTa: &lt;s&gt; A &lt;/s&gt; and &lt;s&gt; A &lt;/s&gt;&lt;/s&gt; B &lt;/s&gt;; all type 0 (RoBERTa has one token type).</summary>
    public static SpecialTokensLayout Roberta(int cls, int sep) => new()
    {
        SinglePrefix = [cls], SingleSuffix = [sep],
        PairPrefix = [cls], PairMiddle = [sep, sep], PairSuffix = [sep],
        SecondSegmentTypeId = 0,
    };

    /// <summary>
    /// Llama's (LlamaTokenizerFast's template): <c>&lt;s&gt;? A &lt;/s&gt;?</c> and
    /// <c>&lt;s&gt;? A &lt;/s&gt;? &lt;s&gt;? B &lt;/s&gt;?</c>, each special token there when its flag says so, the
    /// second text and its special tokens type 1.
    /// </summary>
    public static SpecialTokensLayout BosEos(int? bos, int? eos)
    {
        int[] prefix = bos is int b ? [b] : [], suffix = eos is int e ? [e] : [];
        return new SpecialTokensLayout
        {
            SinglePrefix = prefix, SingleSuffix = suffix,
            PairPrefix = prefix, PairMiddle = [.. suffix, .. prefix], PairSuffix = suffix,
            SecondSegmentTypeId = 1,
            PairMiddleTypeIds = [.. suffix.Select(_ => 0), .. prefix.Select(_ => 1)],
        };
    }

    /// <summary>GPT-2: no special tokens; a pair is the two texts back to back, the second one type 1.</summary>
    public static SpecialTokensLayout None() => new()
    {
        SinglePrefix = [], SingleSuffix = [], PairPrefix = [], PairMiddle = [], PairSuffix = [],
        SecondSegmentTypeId = 1,
    };

    /// <summary>Lays out (already truncated) token lists; <paramref name="second"/> null means a single text.</summary>
    public EncodedText Build(List<int> first, List<int>? second)
    {
        if (second is null)
        {
            var ids = new int[SinglePrefix.Length + first.Count + SingleSuffix.Length];
            SinglePrefix.CopyTo(ids, 0);
            first.CopyTo(ids, SinglePrefix.Length);
            SingleSuffix.CopyTo(ids, SinglePrefix.Length + first.Count);
            return new EncodedText(ids, new int[ids.Length]);
        }
        int firstEnd = PairPrefix.Length + first.Count + PairMiddle.Length;
        var pairIds = new int[firstEnd + second.Count + PairSuffix.Length];
        PairPrefix.CopyTo(pairIds, 0);
        first.CopyTo(pairIds, PairPrefix.Length);
        PairMiddle.CopyTo(pairIds, PairPrefix.Length + first.Count);
        second.CopyTo(pairIds, firstEnd);
        PairSuffix.CopyTo(pairIds, firstEnd + second.Count);
        var types = new int[pairIds.Length];
        PairMiddleTypeIds?.CopyTo(types, PairPrefix.Length + first.Count);
        if (SecondSegmentTypeId != 0) Array.Fill(types, SecondSegmentTypeId, firstEnd, types.Length - firstEnd);
        return new EncodedText(pairIds, types);
    }
}
