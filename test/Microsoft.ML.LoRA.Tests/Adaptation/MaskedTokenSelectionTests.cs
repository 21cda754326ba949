using Microsoft.ML.LoRA.Adaptation;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Tokenization;

namespace Microsoft.ML.LoRA.Tests.Adaptation;

/// <summary>Hugging Face's masking rule: 15% chosen, of those 80/10/10, never a special token or padding, new masks each time.</summary>
public class MaskedTokenSelectionTests
{
    const int Mask = 4, Vocab = 1000;
    static readonly int[] Specials = { 0, 1, 2, 3, Mask };

    static int[] Body(Random random, int length) => Enumerable.Range(0, length).Select(_ => random.Next(10, Vocab)).ToArray();

    [Fact]
    public void Fifteen_percent_are_chosen_and_of_those_eighty_ten_ten()
    {
        var selection = new MaskedTokenSelection(0.15, Mask, Vocab, Specials);
        var random = new Random(1);
        var data = new Random(2);
        long tokens = 0, chosen = 0, masked = 0, replaced = 0, kept = 0;
        for (int n = 0; n < 4000; n++)
        {
            var ids = Body(data, 50);
            var example = selection.Apply(ids, random);
            for (int i = 0; i < ids.Length; i++)
            {
                tokens++;
                if (example.Labels[i] == MaskedTokenSelection.NotChosen)
                {
                    example.InputIds[i].Should().Be(ids[i], "a token that is not chosen is never changed");
                    continue;
                }
                chosen++;
                example.Labels[i].Should().Be(ids[i], "the label is the original token");
                if (example.InputIds[i] == Mask) masked++;
                else if (example.InputIds[i] == ids[i]) kept++;
                else replaced++;
            }
        }
        ((double)chosen / tokens).Should().BeApproximately(0.15, 0.005);
        ((double)masked / chosen).Should().BeApproximately(0.80, 0.01);
        ((double)replaced / chosen).Should().BeApproximately(0.10, 0.01);
        ((double)kept / chosen).Should().BeApproximately(0.10, 0.01);
    }

    [Fact]
    public void Special_tokens_are_never_chosen_even_when_nearly_everything_is()
    {
        var selection = new MaskedTokenSelection(0.99, Mask, Vocab, Specials);
        var random = new Random(3);
        var ids = new[] { 2, 500, 600, Mask, 700, 0, 1, 3 };
        for (int n = 0; n < 200; n++)
        {
            var example = selection.Apply(ids, random);
            foreach (int i in new[] { 0, 3, 5, 6, 7 })
            {
                example.Labels[i].Should().Be(MaskedTokenSelection.NotChosen);
                example.InputIds[i].Should().Be(ids[i]);
            }
        }
    }

    [Fact]
    public void Padding_is_never_a_predicted_position()
    {
        var selection = new MaskedTokenSelection(0.99, Mask, Vocab, Specials);
        var random = new Random(4);
        var examples = new[] { 3, 9, 1, 6 }.Select(n => new EncodedText(Body(random, n).Prepend(2).Append(3).ToArray(), new int[n + 2])).ToList();
        var masked = examples.Select(e => selection.Apply(e.InputIds, random)).ToList();

        var batch = LanguageModelBatch.Masked(examples, masked, padTokenId: 0, tokenTypes: true);

        long width = batch.Input.InputIds.shape[1];
        width.Should().Be(11);
        var positions = batch.Positions.data<long>().ToArray();
        positions.Should().HaveCount(masked.Sum(m => m.Labels.Count(l => l != MaskedTokenSelection.NotChosen))).And.HaveCount(batch.Count);
        foreach (var p in positions)
        {
            long row = p / width, column = p % width;
            column.Should().BeInRange(1, examples[(int)row].Length - 2, "only real, non-special tokens are predicted");
        }
        batch.Targets.data<long>().ToArray().Should().Equal(positions.Select(p => (long)examples[(int)(p / width)].InputIds[p % width]));
    }

    [Fact]
    public void Masks_are_drawn_anew_each_time_and_reproduced_by_the_same_seed()
    {
        var selection = new MaskedTokenSelection(0.15, Mask, Vocab, Specials);
        var ids = Body(new Random(5), 400);
        var random = new Random(6);
        var first = selection.Apply(ids, random);
        var second = selection.Apply(ids, random);
        var again = selection.Apply(ids, new Random(6));

        second.Labels.Should().NotEqual(first.Labels, "dynamic masking: the next epoch sees other masks");
        again.Labels.Should().Equal(first.Labels);
        again.InputIds.Should().Equal(first.InputIds);
    }

    [Fact]
    public void Real_tokenizers_name_their_mask_and_special_tokens()
    {
        var folder = CheckpointFolder.Open(BertTinyMlm.Path);
        var bert = TextEncoders.FromFolder(folder.Directory, folder.Config, 128);
        bert.MaskTokenId.Should().Be(103);
        bert.SpecialTokenIds.Should().BeEquivalentTo(new[] { 0, 100, 101, 102, 103 }, "[PAD] [UNK] [CLS] [SEP] [MASK]");

        using var dir = new TempDir();
        var roberta = CheckpointFolder.Open(TinyCheckpoint.Create("roberta", dir.File("roberta")));
        var bpe = TextEncoders.FromFolder(roberta.Directory, roberta.Config, 64);
        var toy = Microsoft.ML.LoRA.Tests.Tokenization.ToyByteLevelBpe.Roberta();
        bpe.MaskTokenId.Should().Be(toy.Id("<mask>"));
        bpe.SpecialTokenIds.Should().BeEquivalentTo(toy.Ids("<s>", "<pad>", "</s>", "<unk>", "<mask>"));

        var gpt2 = CheckpointFolder.Open(TinyCheckpoint.Create("gpt2", dir.File("gpt2")));
        TextEncoders.FromFolder(gpt2.Directory, gpt2.Config, 64).MaskTokenId.Should().BeNull("GPT-2 has no mask token");
    }
}
