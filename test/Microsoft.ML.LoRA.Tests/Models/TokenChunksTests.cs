using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Models.Kernels;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.LoRA.Tests.Models;

/// <summary>A position-wise block run over token chunks gives what it gives over the whole batch, gradients included.</summary>
public class TokenChunksTests
{
    // 16 tokens fit a chunk when each token's widest activation takes ChunkBytes / 16 bytes.
    static readonly long WideFeatures = TokenChunks.ChunkBytes / 16 / sizeof(float);

    static Tensor Block(Tensor x, Tensor up, Tensor down, List<long>? rowsSeen = null)
    {
        rowsSeen?.Add(x.numel() / x.shape[^1]);
        using var hidden = F.linear(x, up);
        using var activated = F.gelu(hidden);
        return F.linear(activated, down);
    }

    [Fact]
    public void A_wide_block_runs_in_equal_chunks_under_the_byte_budget_and_matches_the_whole_batch()
    {
        var g = new Generator(4);
        var up = torch.randn(new long[] { 32, 8 }, generator: g).requires_grad_();
        var down = torch.randn(new long[] { 5, 32 }, generator: g).requires_grad_();
        var x = torch.randn(new long[] { 3, 50, 8 }, generator: g).requires_grad_();
        var weights = torch.randn(new long[] { 3, 50, 5 }, generator: g);
        var rowsSeen = new List<long>();

        var whole = Block(x, up, down);
        whole.mul(weights).sum().backward();
        var wholeGrads = new[] { x.grad!.clone(), up.grad!.clone(), down.grad!.clone() };
        foreach (var t in new[] { x, up, down }) t.grad!.zero_();
        var chunked = TokenChunks.Map(x, WideFeatures, chunk => Block(chunk, up, down, rowsSeen));
        chunked.mul(weights).sum().backward();

        rowsSeen.Should().Equal(Enumerable.Repeat(15L, 10), "150 tokens at most 16 a chunk: ten equal chunks");
        chunked.shape.Should().Equal(3, 50, 5);
        chunked.sub(whole).abs().max().item<float>().Should().BeLessThan(1e-5f);
        var chunkedGrads = new[] { x.grad!, up.grad!, down.grad! };
        for (int i = 0; i < 3; i++)
            chunkedGrads[i].sub(wholeGrads[i]).abs().max().item<float>().Should().BeLessThan(1e-4f);
    }

    [Fact]
    public void A_block_that_fits_the_budget_runs_once_on_its_input()
    {
        var x = torch.randn(new long[] { 2, 8, 8 }, generator: new Generator(2));   // never the global generator: concurrent fits are seeded from it
        Tensor? seen = null;

        using var result = TokenChunks.Map(x, WideFeatures, chunk => { seen = chunk; return chunk.mul(2); });

        seen.Should().BeSameAs(x);
        result.shape.Should().Equal(2, 8, 8);
    }
}
