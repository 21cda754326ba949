using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tokenization;
using TorchSharp;

namespace Microsoft.ML.LoRA.Tests.Models;

/// <summary>Dynamic right padding of encoded examples into int64 tensors.</summary>
public class BatchCollatorTests
{
    static readonly EncodedText Short = new([101, 7, 102], [0, 0, 0]);
    static readonly EncodedText Long = new([101, 8, 9, 102, 10, 102], [0, 0, 0, 0, 1, 1]);

    static long[] Values(torch.Tensor t) => t.data<long>().ToArray();

    [Fact]
    public void Pads_on_the_right_to_the_longest_example_with_a_mask()
    {
        var input = BatchCollator.Collate([Short, Long], padTokenId: 5, includeTokenTypeIds: true);
        using var ids = input.InputIds;
        using var mask = input.AttentionMask;
        using var types = input.TokenTypeIds!;

        ids.shape.Should().Equal(2, 6);
        ids.dtype.Should().Be(torch.ScalarType.Int64);
        mask.dtype.Should().Be(torch.ScalarType.Int64);
        types.dtype.Should().Be(torch.ScalarType.Int64);
        Values(ids).Should().Equal(101, 7, 102, 5, 5, 5, 101, 8, 9, 102, 10, 102);
        Values(mask).Should().Equal(1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1);
        Values(types).Should().Equal(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1);
    }

    [Fact]
    public void Width_is_the_longest_in_the_batch_not_the_max_length()
    {
        var input = BatchCollator.Collate([Short, Short], padTokenId: 0, includeTokenTypeIds: false);
        using var ids = input.InputIds;
        using var mask = input.AttentionMask;

        ids.shape.Should().Equal(2, 3);
        Values(ids).Should().Equal(101, 7, 102, 101, 7, 102);
        Values(mask).Should().OnlyContain(v => v == 1);
        input.TokenTypeIds.Should().BeNull();
    }

    [Fact]
    public void With_a_fixed_width_every_row_is_padded_to_it_and_a_longer_example_is_refused()
    {
        var input = BatchCollator.Collate([Short], padTokenId: 0, includeTokenTypeIds: false, padTo: 5);
        using var ids = input.InputIds;
        using var mask = input.AttentionMask;

        ids.shape.Should().Equal(1, 5);
        Values(ids).Should().Equal(101, 7, 102, 0, 0);
        Values(mask).Should().Equal(1, 1, 1, 0, 0);
        FluentActions.Invoking(() => BatchCollator.Collate([Long], 0, false, padTo: 4)).Should().Throw<ArgumentException>().Which.Message.Should().Contain("more than the 4");
    }

    [Fact]
    public void A_single_example_is_a_batch_of_one()
    {
        var input = BatchCollator.Collate([Long], padTokenId: 1, includeTokenTypeIds: false);
        using var ids = input.InputIds;
        using var mask = input.AttentionMask;

        ids.shape.Should().Equal(1, 6);
        Values(ids).Should().Equal(Long.InputIds.Select(i => (long)i));
    }

    [Fact]
    public void Bad_batches_are_rejected()
    {
        FluentActions.Invoking(() => BatchCollator.Collate([], 0, false)).Should().Throw<ArgumentException>().Which.Message.Should().Contain("empty");
        FluentActions.Invoking(() => BatchCollator.Collate([new EncodedText([], [])], 0, false)).Should().Throw<ArgumentException>();
        FluentActions.Invoking(() => BatchCollator.Collate([new EncodedText([1, 2], [0])], 0, true)).Should().Throw<ArgumentException>();
        FluentActions.Invoking(() => BatchCollator.Collate([Short], -1, false)).Should().Throw<ArgumentOutOfRangeException>();
    }
}
