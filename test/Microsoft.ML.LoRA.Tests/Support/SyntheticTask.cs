using Microsoft.ML.LoRA.Tokenization;
using Microsoft.ML.LoRA.Training;

namespace Microsoft.ML.LoRA.Tests.Support;

/// <summary>
/// A learnable task over a fixture's 100-token vocabulary: the label is 1 when the marker token appears in the
/// sequence, else 0. A model that learns nothing stays near 50% accuracy.
/// </summary>
public static class SyntheticTask
{
    public const int Marker = 42;

    public static List<LabeledExample> Make(int count, int seed, int firstToken = 1, int clsId = 2, int sepId = 3)
    {
        var random = new Random(seed);
        var examples = new List<LabeledExample>();
        for (int i = 0; i < count; i++)
        {
            int length = random.Next(4, 14);
            bool positive = i % 2 == 0;
            var body = Enumerable.Range(0, length).Select(_ =>
            {
                int t;
                do t = random.Next(firstToken + 4, 100); while (t == Marker);
                return t;
            }).ToArray();
            if (positive) body[random.Next(length)] = Marker;
            var ids = new[] { clsId }.Concat(body).Append(sepId).ToArray();
            examples.Add(new LabeledExample(new EncodedText(ids, new int[ids.Length]), positive ? 1 : 0));
        }
        return examples;
    }
}
