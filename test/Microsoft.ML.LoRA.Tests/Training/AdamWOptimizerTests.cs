using Microsoft.ML.LoRA.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Tests.Training;

/// <summary>Our AdamW and gradient clipping give torch's results (they exist to keep native Scalars alive).</summary>
public class AdamWOptimizerTests
{
    [Theory]
    [InlineData(0.0)]
    [InlineData(0.05)]
    public void Five_steps_match_torch_adamw(double weightDecay)
    {
        using var generator = new Generator(11);   // a local generator: the global one belongs to concurrent reproducible fits
        using var start = torch.randn(6, 5, generator: generator);
        var grads = Enumerable.Range(0, 5).Select(_ => torch.randn(6, 5, generator: generator)).ToList();
        var ours = new Parameter(start.clone(), true);
        var reference = new Parameter(start.clone(), true);
        using var optimizer = new AdamWOptimizer(new[] { ((IEnumerable<Parameter>)new[] { ours }, weightDecay) }, learningRate: 0.01);
        using var torchAdamW = torch.optim.AdamW(new[] { reference }, lr: 0.01, weight_decay: weightDecay);

        foreach (var g in grads)
        {
            ours.grad = g.clone();
            reference.grad = g.clone();
            optimizer.Step();
            torchAdamW.step();
        }

        (ours - reference).abs().max().item<float>().Should().BeLessThan(1e-6f);
        (ours - start).abs().max().item<float>().Should().BeGreaterThan(0.01f, "five steps moved the weights");
        optimizer.StateElements.Should().Be(2 * 30);
    }

    [Fact]
    public void Clipping_scales_gradients_to_the_global_norm()
    {
        var a = new Parameter(torch.zeros(3), true) { grad = torch.tensor(new float[] { 3, 0, 0 }) };
        var b = new Parameter(torch.zeros(2), true) { grad = torch.tensor(new float[] { 0, 4 }) };

        double norm = GradientClipping.ClipByGlobalNorm(new[] { a, b }, maxNorm: 1.0);

        norm.Should().BeApproximately(5.0, 1e-5);
        a.grad!.data<float>().ToArray().Should().BeEquivalentTo(new[] { 0.6f, 0f, 0f }, o => o.Using<float>(c => c.Subject.Should().BeApproximately(c.Expectation, 1e-5f)).WhenTypeIs<float>());
        b.grad!.data<float>().ToArray()[1].Should().BeApproximately(0.8f, 1e-5f);
        GradientClipping.ClipByGlobalNorm(new[] { a, b }, maxNorm: 10.0).Should().BeApproximately(1.0, 1e-5, "below the limit nothing changes");
    }

    [Theory]
    [InlineData("model.layers.0.input_layernorm.weight")]    // LLaMA's RMSNorm scale: no "LayerNorm" or ".bias" in its name
    [InlineData("bert.encoder.layer.0.output.LayerNorm.weight")]
    [InlineData("classifier.bias")]
    public void Fine_tuning_decays_matrices_but_never_vectors_whatever_their_names(string vectorName)
    {
        using var scope = torch.NewDisposeScope();
        var matrix = new Parameter(torch.ones(3, 4), true);
        var vector = new Parameter(torch.ones(4), true);
        using var optimizer = AdamWOptimizer.WithDecayOnWeights(
            new[] { ("model.layers.0.mlp.gate_proj.weight", matrix), (vectorName, vector) }, weightDecay: 0.1, learningRate: 0.5);
        matrix.grad = torch.zeros(3, 4);   // no gradient step: only the decay moves a parameter
        vector.grad = torch.zeros(4);

        optimizer.Step();

        matrix.data<float>().ToArray().Should().AllSatisfy(v => v.Should().BeApproximately(1f - 0.5f * 0.1f, 1e-6f));
        vector.data<float>().ToArray().Should().AllSatisfy(v => v.Should().Be(1f));
    }
}
