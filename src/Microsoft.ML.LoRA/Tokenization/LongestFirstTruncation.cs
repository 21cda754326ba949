namespace Microsoft.ML.LoRA.Tokenization;

/// <summary>
/// Hugging Face tokenizers' "longest_first" truncation of a text pair: the shorter text is kept whole when the longer
/// one can absorb the cut; otherwise each keeps half of the budget and the longer one gets the odd token (the second
/// text when both are equally long).
/// </summary>
internal static class LongestFirstTruncation
{
    /// <summary>How many tokens of each text to keep so that together they fit <paramref name="budget"/>.</summary>
    public static (int First, int Second) Lengths(int firstLength, int secondLength, int budget)
    {
        if (budget < 0) throw new ArgumentOutOfRangeException(nameof(budget), budget, "the token budget cannot be negative");
        if (firstLength + secondLength <= budget) return (firstLength, secondLength);
        bool swap = firstLength > secondLength;
        int n1 = swap ? secondLength : firstLength; // the shorter
        int n2;
        if (n1 > budget) n2 = n1;
        else n2 = Math.Max(n1, budget - n1);
        if (n1 + n2 > budget)
        {
            n1 = budget / 2;
            n2 = n1 + budget % 2;
        }
        return swap ? (n2, n1) : (n1, n2);
    }
}
